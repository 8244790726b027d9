"""Training a RealNVP: the Trainer and the parts it is made of.

- ``config``: TrainConfig (defaults of the model from FlowConfig), the learning-rate schedule
- ``events``: TrainEvent, what a running Trainer reports
- ``trainer``: the Trainer — prepare, train (step, progress, periodic work), finish
- ``step``: one optimizer step (loss = the flow's bits/dim), the optimizer
- ``ema``: the weights' moving average (torch's AveragedModel)
- ``evaluation``: test bits/dim, calibration batches for EMA batch-norm statistics
- ``progress``: loss averages and speed between events
- ``run_folder``/``run_lock``: the run folder, its lock, temp-file and metrics hygiene
- ``rng_state``, ``distributed``: RNG states for checkpoints, torchrun membership
"""
from .config import AMP_MODES, LR_SCHEDULES, STRUCTURAL, TrainConfig
from .distributed import hardware_description
from .evaluation import evaluate_bits_per_dim
from .events import TrainEvent
from .run_lock import LOCK_NAME, RunLock
from .step import TrainStep, bits_per_dim_loss, make_optimizer, scale_parameters
from .trainer import Measurement, Trainer, train

__all__ = ["AMP_MODES", "LOCK_NAME", "LR_SCHEDULES", "Measurement", "RunLock", "STRUCTURAL", "TrainConfig",
           "TrainEvent", "TrainStep", "Trainer", "bits_per_dim_loss", "evaluate_bits_per_dim",
           "hardware_description", "make_optimizer", "scale_parameters", "train"]
