import pytest

from modelopsx.errors import ModelError
from modelopsx.model.config import TrainConfig, check_input_size, nearest_valid_sizes, parse_input_size


def test_input_size_not_divisible_names_nearest_valid_sizes() -> None:
    with pytest.raises(ModelError) as info:
        check_input_size((250, 384))
    assert "250" in info.value.message and "32" in info.value.message
    assert "224 or 256" in (info.value.hint or "")


def test_nearest_valid_sizes() -> None:
    assert nearest_valid_sizes(250) == (224, 256)
    assert nearest_valid_sizes(256) == (256, 256)
    assert nearest_valid_sizes(10) == (32, 32)


def test_parse_input_size() -> None:
    assert parse_input_size("256x384") == (256, 384)
    assert parse_input_size("224") == (224, 224)
    with pytest.raises(ModelError):
        parse_input_size("big")
    with pytest.raises(ModelError):
        parse_input_size("256x380")


def test_config_round_trips_through_json_and_rejects_bad_values() -> None:
    config = TrainConfig(input_size=(192, 256), epochs=3)
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ModelError):
        TrainConfig(backbone="vgg")
    with pytest.raises(ModelError):
        TrainConfig(epochs=0)
    local = TrainConfig.local_default()
    assert local.input_size[0] % 32 == 0 and local.time_limit_s is not None


def test_local_preset_trains_by_epochs_and_its_time_limit_is_only_a_cap() -> None:
    """make run promises the same metrics for the same data and seed on a quiet or a loaded machine: its
    learning rate must decay by steps, never by the wall clock (the budget mode of cpu_default)."""
    local = TrainConfig.local_default()
    assert local.lr_follows_clock is False and local.time_limit_s is not None
    assert TrainConfig.cpu_default().lr_follows_clock is False  # the CPU preset too: a cap, not a budget


def test_the_gpu_preset_is_sized_for_a_gpu() -> None:
    gpu = TrainConfig.gpu_default()
    assert (gpu.backbone, gpu.alpha, gpu.weights) == ("mobilenetv2", 1.0, "ssdlite-person")
    assert gpu.input_size == (384, 576) and gpu.batch_size >= 64
    assert gpu.fixed_batches and gpu.cache_images and gpu.precision == "auto"
    # the learning rate follows the global batch by the square root of its ratio to the reference batch
    assert gpu.scaled_learning_rate(gpu.lr_reference_batch) == pytest.approx(gpu.learning_rate)
    assert gpu.scaled_learning_rate(4 * 64) == pytest.approx(gpu.learning_rate * (256 / 8) ** 0.5)
    with pytest.raises(ModelError, match="unknown precision 'fp8'"):
        gpu.replace(precision="fp8")


def test_a_preset_whose_person_features_do_not_fit_falls_back_unless_they_were_asked_for() -> None:
    local = TrainConfig.local_default()
    assert local.weights == "ssdlite-person"
    assert local.replace(alpha=0.35).weights == "imagenet"  # a sweep over alpha, `--alpha 0.35`
    assert local.replace(backbone="resnet50").weights == "imagenet"
    assert local.replace(input_size=(64, 96)).weights == "ssdlite-person"  # still fits
    with pytest.raises(ModelError, match="do not fit backbone mobilenetv2 with alpha 0.35"):
        local.replace(alpha=0.35, weights="ssdlite-person")
