"""Bijective building blocks of Real NVP; each has ``forward → (y, logdet)`` and ``inverse``."""
from .coupling import ChannelCoupling, CheckerboardCoupling
from .logit import LogitTransform
from .masks import checkerboard
from .norms import ActNorm, BatchNormFlow, make_norm
from .resnet import ResNet
from .squeeze import squeeze, squeeze_ordered, unsqueeze, unsqueeze_ordered

__all__ = [
    "ActNorm", "BatchNormFlow", "ChannelCoupling", "CheckerboardCoupling", "LogitTransform",
    "ResNet", "checkerboard", "make_norm", "squeeze", "squeeze_ordered", "unsqueeze",
    "unsqueeze_ordered",
]
