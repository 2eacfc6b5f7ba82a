"""Write the bundled demo corpus (``pipeline/data/demo_corpus.csv``, WebVid CSV layout).

A few hundred stock-footage-style captions written for this project: families of captions that
differ by one word (subjects, colours, seasons, actions, places, camera terms), several videos
sharing a caption, and deliberate bad cases each stage must catch (template captions, numbered
clips, rare words, a profane caption, an empty caption, a duplicate video id, a short row).

Usage: python scripts/make_demo_corpus.py [OUT_CSV]   (deterministic; re-running rewrites it)
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

FAMILIES = [
    # (template with {}, fillers) - every pair of fillers gives a one-word caption pair
    ("{} woman smiling in the park", ["Young", "Old", "Happy", "Pregnant"]),
    ("Young {} smiling in the park", ["man", "couple", "girl"]),
    ("Aerial view of {} forest", ["autumn", "winter", "summer", "tropical"]),
    ("Red {} driving on a mountain road", ["car", "truck", "motorcycle", "bus"]),
    ("Cat sleeping on the {}", ["sofa", "bed", "floor", "windowsill"]),
    ("Dog running on the {} at sunset", ["beach", "grass", "snow", "road"]),
    ("Close-up of a {} flower in the garden", ["red", "yellow", "white", "purple"]),
    ("Waves crashing on the {} rocks", ["black", "rocky", "grey"]),
    ("Chef cutting {} in the kitchen", ["onions", "tomatoes", "carrots", "bread"]),
    ("Children playing {} in the backyard", ["football", "basketball", "tag"]),
    ("Man {} a bicycle in the city", ["riding", "repairing", "pushing", "washing"]),
    ("Timelapse of clouds over the {}", ["mountains", "sea", "city", "desert"]),
    ("Slow motion of a {} jumping into the water", ["boy", "dog", "girl", "swimmer"]),
    ("Businessman talking on the phone in the {}", ["office", "street", "car", "airport"]),
    ("Hands typing on a {} keyboard", ["laptop", "wireless", "mechanical"]),
    ("Snow falling on a {} street at night", ["quiet", "busy", "narrow"]),
    ("Horse {} in the meadow", ["grazing", "running", "galloping", "resting"]),
    ("Tracking shot of a {} walking through the crowd", ["woman", "man", "policeman"]),
    ("Fresh {} on a wooden table", ["apples", "strawberries", "oranges", "lemons"]),
    ("Sunrise over the {} lake", ["calm", "frozen", "mountain"]),
]

# deliberate cases for the filters (all one-word pairs, so the demo shows each drop reason)
SPECIAL = [
    "Abstract blue background", "Abstract red background",          # template
    "Business concept with graphs", "Finance concept with graphs",   # template
    "Flag of canada waving in the wind", "Flag of brazil waving in the wind",  # template phrase
    "Light leaks element 190", "Light leaks element 215",            # digit difference
    "Sunset over the sea in 2019", "Sunset over the sea in 2020",    # digit difference
    "Businessman writing on hologram desk crm", "Businessman writing on hologram desk analytics",  # oov
    "Boat on a sea", "Boat on the sea",                              # too similar
    "Close up of a lynx", "Close up of a milkshake",                 # too different
    "Drunk man dancing on stage", "Young man dancing on stage",      # profanity
    "Rain", "Snow",                                                  # single-word captions
]


def make_rows(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    captions: list[str] = []
    for template, fillers in FAMILIES:
        captions += [template.format(f) for f in fillers]
    captions += SPECIAL
    rows, video = [], 1_000_000
    for caption in captions:
        # 1-4 videos per caption: several media per caption make the top-k media step matter
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            video += rng.randint(1, 97)
            text = caption + rng.choice(["", ".", "", " "])
            rows.append({
                "videoid": str(video),
                "contentUrl": f"https://example.invalid/videos/{video}.mp4",
                "duration": f"PT00H00M{rng.randint(5, 40):02d}S",
                "page_dir": f"{video // 1000:06d}_{video // 1000 + 50:06d}",
                "name": text,
            })
    rng.shuffle(rows)
    return rows


def write(out: Path) -> int:
    rows = make_rows()
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["videoid", "contentUrl", "duration", "page_dir", "name"]
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        # rows each stage must reject, not crash on
        writer.writerow({**rows[0], "name": "A duplicate video id with another caption"})
        writer.writerow({**rows[1], "videoid": "999999999", "name": "   "})
        fh.write("123,short row\n")
        writer.writerow({**rows[2], "videoid": "999999998",
                         "name": "Waves crashing on the black rocks\nat dusk, a caption with a newline"})
    return len(rows) + 4


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        Path(__file__).resolve().parent.parent / "pipeline" / "data" / "demo_corpus.csv")
    n = write(target)
    print(f"wrote {n} rows to {target}")
