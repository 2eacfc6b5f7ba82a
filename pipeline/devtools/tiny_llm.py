"""A tiny random-weight LLaMA and a BPE tokenizer trained locally: no download, a few MB.

Used by tests and by ``scripts/make_tiny_llm.py``; the tokenizer is trained on the text of the
built-in training data (prompts and edits) so that it covers the words the tests use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """A byte-level BPE tokenizer trained on ``texts``, wrapped for transformers (adds ``<s>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, tok.token_to_id(BOS))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS,
                                   pad_token=PAD, unk_token=UNK)


def tokenizer_corpus() -> list[str]:
    """Training text for the tokenizer: every built-in example in the paper's prompt format."""
    from covr_datagen.mtg_llm.data import load_builtin_examples
    from covr_datagen.mtg_llm.prompt import format_example

    return ["".join(format_example(e.caption1, e.caption2, e.edit)) for e in load_builtin_examples()]


def make_tiny_llm(out_dir: str | Path, *, vocab_size: int = 1024, hidden_size: int = 64,
                  layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """Write a random ``LlamaForCausalLM`` and its tokenizer to ``out_dir`` (save_pretrained)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(tokenizer_corpus(), vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
