import math

import torch
from torchmetrics.functional.multimodal.clip_score import clip_score
from transformers import CLIPImageProcessor, CLIPProcessor

from dpo_diff.objectives import ClipLoss, spherical_distance


def test_spherical_distance_known_values():
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    y = torch.tensor([[0.0, 3.0], [-1.0, 0.0], [5.0, 0.0]])
    d = spherical_distance(x, y)
    assert torch.allclose(d, torch.tensor([2 * (math.pi / 4) ** 2, 2 * (math.pi / 2) ** 2, 0.0]), atol=1e-6)


class _TensorFeatures(torch.nn.Module):
    """transformers 5 returns output objects from get_*_features; torchmetrics 1.9 expects tensors."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)

    def get_image_features(self, *args, **kwargs):
        out = self.inner.get_image_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    def get_text_features(self, *args, **kwargs):
        out = self.inner.get_text_features(*args, **kwargs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


def test_clip_loss_matches_torchmetrics_clip_score(engine):
    """Same tiny CLIP: our spherical loss must equal the one implied by torchmetrics' cosine."""
    scorer = engine.scorer
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            do_resize=False, do_center_crop=False, image_mean=scorer.mean.flatten().tolist(),
            image_std=scorer.std.flatten().tolist(),
        ),
        tokenizer=scorer.tokenizer,
    )
    reference_model = lambda: (_TensorFeatures(scorer.model), processor)  # noqa: E731

    def reference_loss(a, b) -> float:
        cos = float(clip_score(a, b, model_name_or_path=reference_model)) / 100
        assert cos > 0.01  # torchmetrics clamps negative cosines to 0: no reference there
        return 2 * math.asin(math.sqrt(2 - 2 * cos) / 2) ** 2

    # Random tiny towers put random texts and images at negative cosine, where torchmetrics
    # clamps; so each tower is checked on pairs of its own modality, where cosines are positive.
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 32, 32, generator=g)
    b = (a + 0.2 * torch.rand(3, 3, 32, 32, generator=g)).clamp(0, 1)
    a8, b8 = (a * 255).round().to(torch.uint8), (b * 255).round().to(torch.uint8)
    ours = spherical_distance(scorer.encode_images(a8.float() / 255), scorer.encode_images(b8.float() / 255))
    for i in range(3):
        assert abs(float(ours[i]) - reference_loss(a8[i], b8[i])) < 1e-4
    pairs = [("a red car", "a red truck"), ("a quiet street", "a quiet road"), ("a photo of a dog", "a photo of a cat")]
    for x, y in pairs:
        ours = spherical_distance(scorer.encode_text([x]), scorer.encode_text([y]))
        assert abs(float(ours) - reference_loss(x, y)) < 1e-4


def test_clip_loss_is_differentiable_in_the_images(engine):
    images = torch.rand(2, 3, 64, 64, requires_grad=True)  # not the scorer's size: resized inside
    objective = ClipLoss(engine.scorer, "a red car")
    loss = objective(images).sum()
    expected = spherical_distance(engine.scorer.encode_images(images.detach()), objective.target)
    assert torch.allclose(objective(images).detach(), expected)
    loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def _reference_loss(scorer, images_uint8, text: str) -> torch.Tensor:
    """The loss computed the reference way: transformers' CLIPImageProcessor (resize the short side,
    centre-crop, rescale, normalise) on PIL images, then CLIPModel's image and text features."""
    from PIL import Image

    size = scorer.image_size
    processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, do_resize=True,
        do_center_crop=True, do_rescale=True, do_normalize=True, image_mean=scorer.mean.flatten().tolist(),
        image_std=scorer.std.flatten().tolist(), resample=Image.Resampling.BICUBIC,
    )
    pil = [Image.fromarray(im.permute(1, 2, 0).numpy()) for im in images_uint8]
    pixels = torch.as_tensor(processor(images=pil, return_tensors="np")["pixel_values"])
    with torch.no_grad():
        image = scorer.model.get_image_features(pixel_values=pixels)
        ids = scorer.tokenizer([text], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        txt = scorer.model.get_text_features(input_ids=ids.input_ids)
    image = image if isinstance(image, torch.Tensor) else image.pooler_output
    txt = txt if isinstance(txt, torch.Tensor) else txt.pooler_output
    return spherical_distance(image, txt)


def test_objective_matches_clip_image_processor_and_clip_model_end_to_end(engine):
    """Our differentiable preprocessing + loss against the reference pipeline, on images that need
    resizing and cropping (non-square, not the scorer's size), over image-text pairs."""
    scorer = engine.scorer
    g = torch.Generator().manual_seed(0)
    base = torch.rand(4, 3, 6, 5, generator=g)  # smooth images: resampling kernels differ little on them
    images = torch.nn.functional.interpolate(base, size=(scorer.image_size * 3 // 2, scorer.image_size * 5 // 4),
                                             mode="bilinear", align_corners=False)
    u8 = (images * 255).round().to(torch.uint8)
    for text in ("a red car parked on a quiet street", "a photo of a dog"):
        ours = ClipLoss(scorer, text)(u8.float() / 255)
        reference = _reference_loss(scorer, u8, text)
        assert torch.allclose(ours, reference, atol=2e-3), (ours, reference)
        # the check can fail: skipping the centre crop (squashing instead) moves the loss far more
        squashed = torch.nn.functional.interpolate(u8.float() / 255, size=(scorer.image_size,) * 2, mode="bicubic")
        wrong = spherical_distance(
            scorer.encode_images(squashed), scorer.encode_text([text])
        )
        assert (wrong - reference).abs().max() > 10 * (ours - reference).abs().max()
