"""GroupByKeyInBuckets groups exactly like GroupByKey, across bundles and buckets."""

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from covr_datagen.pipeline.core.grouping import GroupByKeyInBuckets, key_bucket


def _sorted_groups(kv):
    return kv[0], sorted(kv[1])


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=3), st.integers(0, 5)), max_size=60),
       st.sampled_from([1, 3, 256]))
def test_same_groups_as_group_by_key(pairs, buckets):
    with beam.Pipeline() as p:
        items = p | beam.Create(pairs, reshuffle=False)
        ours = (items | "Ours" >> GroupByKeyInBuckets(buckets)
                | "SortOurs" >> beam.Map(_sorted_groups))
        theirs = (items | "Theirs" >> beam.GroupByKey()
                  | "SortTheirs" >> beam.Map(_sorted_groups))
        expected = {}
        for key, value in pairs:
            expected.setdefault(key, []).append(value)
        assert_that(ours, equal_to([(k, sorted(v)) for k, v in expected.items()]), label="ours")
        assert_that(theirs, equal_to([(k, sorted(v)) for k, v in expected.items()]),
                    label="theirs")


def test_key_bucket_is_stable_and_in_range():
    assert key_bucket("abc", 256) == key_bucket("abc", 256)
    assert {key_bucket(str(i), 7) for i in range(1000)} == set(range(7))
    assert 0 <= key_bucket(("a", 1), 5) < 5
