import torch

from dpo_diff.models import clip_tokenizer


def test_shipped_bpe_tokenizes_like_clip():
    tok = clip_tokenizer()
    assert len(tok) == 49408
    # ids of OpenAI CLIP's vocabulary (what SD 1.x checkpoints use)
    assert tok("a red car").input_ids == [49406, 320, 736, 1615, 49407]
    assert tok.convert_ids_to_tokens(tok("crimson", add_special_tokens=False).input_ids) == ["crimson</w>"]
    assert len(tok("watermark", add_special_tokens=False).input_ids) == 2


def test_tiny_preset_is_seeded(engine):
    import dpo_diff

    other = dpo_diff.load("tiny", device="cpu")
    for a, b in zip(engine.model.unet.parameters(), other.model.unet.parameters()):
        assert torch.equal(a, b)
    assert engine.model.height == 32 and engine.model.tokenizer.model_max_length == 77
