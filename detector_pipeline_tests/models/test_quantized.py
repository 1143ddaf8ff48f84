"""Int8 Linear layers: close to fp32 whatever the activations' outliers, and exact in their int32 products."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_pipeline.models.quantized import (
    Int8Linear,
    activation_maxima,
    quantizable_linears,
    quantize_linears,
)


@settings(max_examples=25, deadline=None)
@given(tokens=st.integers(1, 40), features=st.sampled_from([8, 24, 64]), out=st.sampled_from([8, 40]),
       outlier=st.floats(1.0, 100.0), seed=st.integers(0, 2**16))
def test_an_int8_linear_stays_within_quantization_error_of_fp32(tokens, features, out, outlier, seed):
    generator = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(features, out)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(out, features, generator=generator))
    x = torch.randn(2, tokens, features, generator=generator)
    x[..., 0] *= outlier  # one outlier channel, as CLIP's residual stream has
    smoothing = 1 / (x.abs().flatten(0, 1).amax(0) ** 0.5 / linear.weight.abs().amax(0) ** 0.5)
    expected, got = linear(x), Int8Linear(linear, smoothing)(x)
    # Two roundings of at most half a step each, over `features` products: a bound per output.
    assert got.shape == expected.shape
    assert ((got - expected).norm() / expected.norm()).item() < 0.02


def test_a_quantized_vit_keeps_its_embeddings_direction():
    torch.manual_seed(0)
    import timm
    model = timm.create_model("test_vit", pretrained=False, num_classes=0).eval()
    calibration, held_out = torch.randn(8, 3, 160, 160), torch.randn(6, 3, 160, 160)
    with torch.inference_mode():
        reference = model(held_out)
        maxima = activation_maxima(model, [calibration[:4], calibration[4:]])
        assert set(maxima) == set(quantizable_linears(model)) and len(maxima) > 0
        quantized = quantize_linears(model, maxima)
        got = quantized(held_out)
    assert not quantizable_linears(quantized)  # every block Linear replaced
    assert torch.nn.functional.cosine_similarity(got, reference).min() > 0.99


@settings(max_examples=20, deadline=None)
@given(tokens=st.integers(1, 30), features=st.sampled_from([8, 64, 768]), seed=st.integers(0, 2**16))
def test_the_fp32_path_of_a_cpu_without_int8_kernels_equals_the_int32_products(tokens, features, seed):
    """Both paths give the same outputs: the integers are the same, and their sums stay exact in fp32."""
    from unittest import mock

    from detector_pipeline.models import quantized

    generator = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(features, 16)
    x = torch.randn(tokens, features, generator=generator) * 5
    layer = Int8Linear(linear, torch.ones(features))
    with mock.patch.object(quantized, "_FAST_CPU_INT8", True):
        exact = layer(x)
    with mock.patch.object(quantized, "_FAST_CPU_INT8", False):
        assert torch.equal(layer(x), exact)
