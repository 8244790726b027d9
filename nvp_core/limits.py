"""Bounds checked *before* reading or allocating, so a hostile or mistaken input fails in
milliseconds with the limit it hit, instead of hanging, eating all memory, or dying with a
misleading "out of memory" deep inside torch.

Everything here is arithmetic on a FlowConfig and sizes; nothing is built or allocated.
The parameter count is by formula (tests/test_hostile_io.py checks it against real
RealNVP models, so a change of architecture that the formula misses fails a test).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from .config import FlowConfig
from .errors import NVPError

# ---------------------------------------------------------------- files
#: A model file larger than this is refused before it is read (the shipped ones are 8–13 MB).
MAX_MODEL_FILE_BYTES = 2 * 1024**3
#: The JSON header of a safetensors model (tensor table + config + metadata; the shipped ones ~200 KB).
MAX_HEADER_BYTES = 16 * 1024**2
#: A JSON side file (config.json, metadata.json, a settings or session file).
MAX_JSON_FILE_BYTES = 16 * 1024**2
#: Nesting depth of any JSON document we read; ours are 2–3 deep, and Python's parser
#: raises RecursionError near 1000.
MAX_JSON_DEPTH = 64

# ---------------------------------------------------------------- models
#: Parameters a model file's config may ask for (the shipped model has 1.9 M; the paper's
#: ImageNet 64×64 model about 100 M). 500 M float32 parameters are 2 GB.
MAX_PARAMETERS = 500_000_000
#: Residual blocks over all couplings: building a module costs ~4 ms of Python, so 60 000
#: blocks (blocks=64 × scales=10) would take minutes before a single weight is read.
MAX_RESIDUAL_BLOCKS = 2048

# ---------------------------------------------------------------- arguments
#: Seeds: torch generators take 64-bit seeds; a larger number cannot be reproduced.
MAX_SEED = 2**63 - 1
#: Largest side of any canvas or image the tools create (FlowConfig.image_size has the same cap).
MAX_SIDE = 65536
#: Pixels of one picture the tools write (a grid, a canvas, a frame): 8192×8192. Larger ones
#: take minutes to encode, hundreds of MB, and many viewers (and decompression-bomb guards) refuse them.
MAX_OUTPUT_PIXELS = 8192 * 8192
#: Temperatures: the prior's standard deviation. Beyond ~10 samples are pure saturation,
#: and 1e308 overflows to inf inside the flow (a black grid).
MAX_TEMPERATURE = 100.0
#: Counts that multiply work: samples, dequantization draws, frames.
MAX_SAMPLES = 100_000
MAX_NOISE_DRAWS = 1_000
MAX_FRAMES = 10_000


class LimitError(NVPError, ValueError):
    """An input asks for more than a documented limit; the message names the limit."""


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a parsed JSON value, stopping once ``limit`` is passed (iterative,
    so it cannot itself overflow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def loads_json(text: str | bytes, what: str, limit: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that turns absurd nesting into a LimitError (Python's own parser would
    raise RecursionError, or crash a thread with a small stack). ValueError as usual for
    malformed JSON."""
    import json

    try:
        value = json.loads(text)
    except RecursionError:
        raise LimitError(f"{what} is JSON nested deeper than {limit} levels") from None
    if json_depth(value, limit) > limit:
        raise LimitError(f"{what} is JSON nested deeper than {limit} levels")
    return value


# ---------------------------------------------------------------- model size by formula
def _config_fields(config: FlowConfig | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(config, FlowConfig):
        return config.to_dict()
    return {**{f.name: f.default for f in dataclasses.fields(FlowConfig)}, **dict(config)}


def _resnet_parameters(cin: int, cout: int, width: int, blocks: int) -> int:
    wn_conv3 = lambda i, o: o * (9 * i + 2)  # weight-normed 3×3: v, g and bias  # noqa: E731
    stem = wn_conv3(cin, width)
    block = 2 * (2 * width) + 2 * wn_conv3(width, width)  # two batch norms, two convolutions
    head = 2 * width + cout * width + cout  # batch norm, 1×1 convolution
    return stem + blocks * block + head


def _norm_parameters(kind: str, channels: int) -> int:
    return 0 if kind == "none" else 2 * channels


def estimate_parameters(config: FlowConfig | Mapping[str, Any]) -> int:
    """Trainable parameters of ``RealNVP(config)``, by formula (no model is built).

    Accepts a FlowConfig or the plain dict from a file's header, so a config too large to
    be worth validating can be refused first."""
    c = _config_fields(config)
    channels, total = int(c["channels"]), 0
    scales = int(c["scales"])
    for k in range(scales):
        final = k == scales - 1
        width = min(int(c["width"]) * 2**k, int(c["max_width"]))
        steps = 4 if final else 3
        total += steps * (_resnet_parameters(channels + 1, 2 * channels, width, int(c["blocks"]))
                          + channels + _norm_parameters(c["norm"], channels))
        if not final:
            half = 2 * channels
            # FlowConfig.channel_width_factor (absent in older configs: 1) widens the channel-wise nets.
            channel_width = width * int(c.get("channel_width_factor", 1))
            total += 3 * (_resnet_parameters(half, 2 * half, channel_width, int(c["blocks"]))
                          + half + _norm_parameters(c["norm"], 4 * channels))
        channels *= 2
    return total


def residual_blocks(config: FlowConfig | Mapping[str, Any]) -> int:
    """Residual blocks over all couplings (a measure of how long building the model takes)."""
    c = _config_fields(config)
    scales = int(c["scales"])
    return (6 * (scales - 1) + 4) * int(c["blocks"])


def check_model_config(config: FlowConfig | Mapping[str, Any], file_values: int | None = None,
                       what: str = "the model") -> None:
    """Refuse a config whose model would be too large to build, or larger than the values
    ``file_values`` that the file actually holds — before anything is allocated."""
    params = estimate_parameters(config)
    c = _config_fields(config)
    arch = f"width {c['width']} (max {c['max_width']}), {c['blocks']} blocks, {c['scales']} scales"
    if params > MAX_PARAMETERS:
        raise LimitError(f"{what}'s config asks for {params:,} parameters ({arch}), above the limit of "
                         f"{MAX_PARAMETERS:,}; the file is not a usable model")
    blocks = residual_blocks(config)
    if blocks > MAX_RESIDUAL_BLOCKS:
        raise LimitError(f"{what}'s config asks for {blocks:,} residual blocks ({arch}), above the limit "
                         f"of {MAX_RESIDUAL_BLOCKS:,}")
    # The formula is exact today; the slack keeps a future architecture tweak that it misses
    # from refusing good files, while a 54 KB file claiming gigabytes still fails here.
    if file_values is not None and params > 2 * file_values + 1024:
        raise LimitError(f"{what}'s config needs {params:,} parameters ({arch}) but the file holds only "
                         f"{file_values:,} values: the config does not belong to these weights")


# ---------------------------------------------------------------- memory at inference
#: Live float32 tensors of the widest ResNet layer during one forward/inverse pass, measured
#: loosely (input, normalised, convolved, residual sum, cached concatenations): a safe multiple.
_LIVE_TENSORS = 8


def activation_bytes(config: FlowConfig, height: int, width: int, batch: int = 1) -> int:
    """Rough peak memory (bytes) of decoding or encoding ``batch`` images of height×width:
    the widest ResNet activation times a few live copies, plus the image-sized latents.
    An estimate meant to catch absurd requests (10× too large), not to budget tightly."""
    peak, pixels = 0, height * width
    factor = int(getattr(config, "channel_width_factor", 1))
    for k in range(config.scales):
        w = min(config.width * 2**k, config.max_width)
        peak = max(peak, w * pixels // 4**k, w * factor * pixels // 4**(k + 1))  # checkerboard, channel-wise
    return 4 * batch * (_LIVE_TENSORS * peak + 8 * config.channels * pixels)


#: One training step keeps every layer's activations for the backward pass: measured 6.8 MiB per
#: 32×32 image for the default model in float32 (peak RSS growth from batch 8 to 32; 3.4 MiB with
#: bf16 autocast), 11× :func:`activation_bytes` of one image. 12× keeps the check on the safe side.
_TRAINING_FACTOR = 12


def training_bytes(config: FlowConfig, height: int, width: int, batch: int = 1) -> int:
    """Rough peak memory (bytes) of one training step on ``batch`` images of height×width."""
    return _TRAINING_FACTOR * activation_bytes(config, height, width, batch)


def available_memory(device: Any = "cpu") -> int | None:
    """Bytes free for new tensors on ``device`` (cuda: the driver's free memory; cpu:
    MemAvailable of /proc/meminfo, else physical memory), or None if unknown."""
    dev = str(device)
    if dev.startswith("cuda"):
        try:
            import torch

            return int(torch.cuda.mem_get_info(torch.device(dev))[0])
        except Exception:  # noqa: BLE001 - unknown is an answer
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def plan_batch(config: FlowConfig, height: int, width: int, batch: int, device: Any = "cpu",
               budget: int | None = None) -> int:
    """The largest batch ≤ ``batch`` whose estimated activations fit in ``budget`` bytes
    (default: 80% of the device's free memory). LimitError when even one image does not
    fit, naming the canvas size as the cause."""
    if budget is None:
        free = available_memory(device)
        if free is None:
            return batch
        budget = int(free * 0.8)
    one = activation_bytes(config, height, width, 1)
    if one > budget:
        raise LimitError(f"one {height}×{width} image needs about {gib(one)} of {device} memory to run "
                         f"through this model, more than the {gib(budget)} available: use a smaller size")
    return max(1, min(batch, budget // one))
