"""Trainer: events, checkpoints, exact resume after a stop or a crash, NaN handling, CLI."""
from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import nvp_core as nc
from nvp_core import checkpoint as ckpt
from nvp_core.train import TrainConfig, Trainer, TrainEvent, load_train_config, scale_parameters


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two threads wait on each
    other at every tiny convolution (measured 70× slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(train_folder):
    return train_folder


def cfg(folder, out, **kw) -> TrainConfig:
    base = dict(data=str(folder), size=8, out=str(out), steps=6, batch_size=8, width=4, blocks=1,
                max_width=8, eval_every=3, eval_images=8, sample_every=6, n_samples=4, checkpoint_every=3,
                warmup_steps=2, num_workers=1)
    base.update(kw)
    return TrainConfig(**base)


class Recorder:
    def __init__(self, on_event=None):
        self.events: list[TrainEvent] = []
        self.on_event = on_event

    def __call__(self, ev: TrainEvent) -> None:
        self.events.append(ev)
        if self.on_event:
            self.on_event(ev)

    def kinds(self) -> set[str]:
        return {e.kind for e in self.events}

    def losses(self) -> dict[int, float]:
        return {e.step: e.loss for e in self.events if e.kind == "progress" and e.loss is not None}


def run(config: TrainConfig, on_event=None) -> tuple[Trainer, Recorder, dict]:
    rec = Recorder(on_event)
    tr = Trainer(config, rec)
    tr.progress_interval_s = 0.0  # every step's loss
    result = tr.run()
    return tr, rec, result


def test_config_json_round_trip_and_validation():
    c = TrainConfig(data="x", steps=10, lr=3e-4, amp="bf16", width=8)
    assert TrainConfig.from_json(c.to_json()) == c
    with pytest.raises(nc.ConfigError, match="TrainConfig.amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(nc.ConfigError, match="TrainConfig.batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(nc.ConfigError, match="image_size"):
        TrainConfig(size=36, scales=4)
    with pytest.raises(nc.ConfigError, match="unknown TrainConfig"):
        TrainConfig.from_dict({"stepz": 3})


def test_scale_parameters_are_the_magnitudes():
    flow = nc.RealNVP(nc.FlowConfig(scales=2, width=4, blocks=1, image_size=8))
    scale, rest = scale_parameters(flow)
    names = {n for n, p in flow.named_parameters() if any(p is q for q in scale)}
    assert any(n.endswith("bound.scale") for n in names)
    assert any(n.endswith("log_gamma") for n in names)
    assert not any(n.endswith("bias") or n.endswith("beta") for n in names)
    assert len(scale) + len(rest) == len(list(flow.parameters()))


def test_training_emits_events_and_saves_a_loadable_model(folder, tmp_path):
    c = cfg(folder, tmp_path / "run", command="nvp train test")
    tr, rec, result = run(c)
    assert {"start", "progress", "eval", "samples", "checkpoint", "done"} <= rec.kinds()
    prog = [e for e in rec.events if e.kind == "progress"]
    assert [e.step for e in prog] == list(range(1, 7))
    assert all(np.isfinite(e.loss) for e in prog)
    assert prog[-1].images_per_s > 0 and prog[-1].eta_s == 0
    samples = [e for e in rec.events if e.kind == "samples"][-1]
    assert samples.samples.dtype == np.uint8 and samples.samples.shape == (4, 8, 8, 3)
    evals = [e.test_bpd for e in rec.events if e.kind == "eval"]
    assert len(evals) == 3 and all(np.isfinite(evals))  # steps 0, 3, 6
    flow = nc.load(tmp_path / "run" / "model")
    meta = flow.metadata
    assert meta["step"] == 6 and meta["test_bpd"] == pytest.approx(evals[-1])
    assert meta["train_command"] == "nvp train test" and meta["wall_time_s"] > 0 and meta["hardware"]
    assert (tmp_path / "run" / "samples" / "step_0000006.png").is_file()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "test_bpd" in r] == [0, 3, 6]
    train_steps = [r["step"] for r in rows if "train_bpd" in r]  # throttled (10 s): first and last step here
    assert train_steps[0] == 1 and train_steps[-1] == 6 and len(train_steps) < 6
    # The checkpoint is safetensors (no pickle anywhere) and holds model, optimizer and RNG.
    raw = load_file(str(tmp_path / "run" / ckpt.CHECKPOINT_NAME))
    assert any(k.startswith("model.") for k in raw) and any(k.startswith("optim.") for k in raw)
    assert "rng.torch_cpu" in raw
    assert load_train_config(tmp_path / "run") == c
    # the saved model scores the test set as the trainer did
    again = nc.train.evaluate_bits_per_dim(flow, tr.data.test[:8], seed=0)
    assert again == pytest.approx(evals[-1], abs=1e-5)


def test_optimizer_state_flattens_losslessly():
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.Adam([p], lr=1e-3)
    p.sum().backward()
    opt.step()
    tensors, rest = ckpt.flatten_optimizer(opt.state_dict())
    back = ckpt.unflatten_optimizer(tensors, json.loads(json.dumps(rest)))
    orig = opt.state_dict()
    assert back["param_groups"] == orig["param_groups"]
    for k, v in orig["state"][0].items():
        assert torch.equal(back["state"][0][k], v)


def _final_state(out) -> dict[str, torch.Tensor]:
    tensors, _ = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_NAME)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "optim."))}


def test_resume_after_a_crash_continues_exactly(folder, tmp_path):
    """Uninterrupted 6 steps vs a run that dies after step 4 (checkpoint at 3) and resumes."""
    _, full, _ = run(cfg(folder, tmp_path / "a", ema_decay=0.9))

    def crash(ev):
        if ev.kind == "progress" and ev.step == 4:
            raise RuntimeError("simulated kill")

    with pytest.raises(RuntimeError, match="simulated kill"):
        run(cfg(folder, tmp_path / "b", ema_decay=0.9), crash)
    assert json.loads(load_file_meta(tmp_path / "b"))["step"] == 3
    _, resumed, _ = run(cfg(folder, tmp_path / "b", ema_decay=0.9, resume=True))
    a, b = full.losses(), resumed.losses()
    assert sorted(b) == [4, 5, 6]
    for step in (4, 5, 6):
        assert b[step] == a[step], (step, a[step], b[step])
    sa, sb = _final_state(tmp_path / "a"), _final_state(tmp_path / "b")
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ma, mb = nc.load(tmp_path / "a" / "model"), nc.load(tmp_path / "b" / "model")
    assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))


def load_file_meta(out) -> str:
    _, info = ckpt.load_checkpoint(out / ckpt.CHECKPOINT_NAME)
    return json.dumps(info)


def test_stop_from_another_thread_within_one_step_then_resume(folder, tmp_path):
    c = cfg(folder, tmp_path / "run", steps=40, eval_every=100, sample_every=100, checkpoint_every=100)
    reached = threading.Event()
    seen: list[int] = []

    def on_event(ev):
        if ev.kind == "progress" and ev.loss is not None:
            seen.append(ev.step)
            if ev.step >= 2:
                reached.set()

    rec = Recorder(on_event)
    tr = Trainer(c, rec)
    tr.progress_interval_s = 0.0
    result = {}
    th = threading.Thread(target=lambda: result.update(tr.run()))
    th.start()
    assert reached.wait(60)
    asked_at = seen[-1]
    tr.request_stop()
    th.join(60)
    assert not th.is_alive()
    assert result["stopped"] and result["step"] <= asked_at + 1
    assert "stopped" in rec.kinds()
    assert json.loads(load_file_meta(tmp_path / "run"))["step"] == result["step"]
    assert nc.load(tmp_path / "run" / "model").metadata["stopped_early"] is True
    # resume to a shorter total: nothing to do but finish and save
    _, rec2, res2 = run(cfg(folder, tmp_path / "run", steps=result["step"] + 1, eval_every=100,
                            sample_every=100, checkpoint_every=100, resume=True))
    assert res2["step"] == result["step"] + 1 and "done" in rec2.kinds()


def test_pause_and_resume(folder, tmp_path):
    c = cfg(folder, tmp_path / "run", steps=4, eval_every=100, sample_every=100, checkpoint_every=100)
    timers = []

    def on_event(ev):
        if ev.kind == "progress" and ev.step == 2 and not timers:
            tr.pause()
            t = threading.Timer(0.3, tr.resume)
            timers.append(t)
            t.start()

    rec = Recorder(on_event)
    tr = Trainer(c, rec)
    tr.progress_interval_s = 0.0
    res = tr.run()
    timers[0].join()
    assert res["step"] == 4 and not res["stopped"]
    assert any(e.kind == "progress" and e.message == "paused" for e in rec.events)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(folder, tmp_path):
    c = cfg(folder, tmp_path / "run", steps=8, checkpoint_every=2, eval_every=100, sample_every=100)

    def poison(ev):
        if ev.kind == "progress" and ev.step == 3:
            with torch.no_grad():
                next(tr.model.parameters()).fill_(float("nan"))

    rec = Recorder(poison)
    tr = Trainer(c, rec)
    tr.progress_interval_s = 0.0
    with pytest.raises(nc.TrainingError, match=r"NaN/Inf by step 4.*last good checkpoint \(step 2\)"):
        tr.run()
    assert rec.events[-1].kind == "error" and "NaN" in rec.events[-1].message
    tensors, info = ckpt.load_checkpoint(tmp_path / "run" / ckpt.CHECKPOINT_NAME)
    assert info["step"] == 2
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if v.is_floating_point())


def test_refuses_to_overwrite_or_resume_a_different_run(folder, tmp_path):
    run(cfg(folder, tmp_path / "run", steps=1, eval_every=100, sample_every=100))
    with pytest.raises(nc.TrainingError, match="already holds a training run"):
        Trainer(cfg(folder, tmp_path / "run", steps=2)).run()
    with pytest.raises(nc.TrainingError, match="width: checkpoint 4, given 8"):
        Trainer(cfg(folder, tmp_path / "run", steps=2, width=8, resume=True)).run()
    with pytest.raises(nc.TrainingError, match="nothing to resume"):
        Trainer(cfg(folder, tmp_path / "other", resume=True)).run()
    with pytest.raises(nc.DataError):
        Trainer(cfg(tmp_path / "nope", tmp_path / "x")).run()


def test_bf16_autocast_trains(folder, tmp_path):
    _, rec, res = run(cfg(folder, tmp_path / "run", steps=2, amp="bf16", eval_every=100, sample_every=100))
    assert all(np.isfinite(v) for v in rec.losses().values())
    assert nc.load(tmp_path / "run" / "model").metadata["train_config"]["amp"] == "bf16"


def test_cli_train_and_resume(folder, tmp_path, capsys):
    from nvp_core.cli import main

    args = ["train", str(folder), "--size", "8", "--out", str(tmp_path / "cli"), "--steps", "2", "--width", "4",
            "--blocks", "1", "--max-width", "8", "--batch-size", "4", "--eval-images", "4", "--samples", "4",
            "--quiet"]
    assert main(args) == 0
    assert main(args) == 2  # refuses to overwrite
    assert "pass --resume" in capsys.readouterr().err
    assert main(["train", str(folder), "--out", str(tmp_path / "cli"), "--resume", "--steps", "3", "--quiet"]) == 0
    assert nc.load(tmp_path / "cli" / "model").metadata["step"] == 3
    assert main(["train", str(tmp_path / "nothing"), "--out", str(tmp_path / "c2"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_actnorm_with_ema_initialises_from_data_and_saves_ema_weights(folder, tmp_path):
    _, rec, _ = run(cfg(folder, tmp_path / "run", steps=3, norm="actnorm", ema_decay=0.5, eval_every=100,
                        sample_every=100))
    assert all(np.isfinite(v) for v in rec.losses().values())
    tensors, _ = ckpt.load_checkpoint(tmp_path / "run" / ckpt.CHECKPOINT_NAME)
    raw, ema = ckpt.split(tensors, "model"), ckpt.split(tensors, "ema")
    name = next(k for k in ema if k.endswith("log_scale"))
    assert float(raw[name].abs().max()) > 0  # data-dependent init happened
    # EMA started after the init: it sits between init-ish values and the trained ones, not at zero
    assert float(ema[name].abs().max()) > 0 and not torch.equal(ema[name], raw[name])
    model = nc.load(tmp_path / "run" / "model")
    assert torch.equal(dict(model.named_parameters())[name].detach(), ema[name])


def test_ema_model_scores_like_the_live_model(folder, tmp_path):
    """A long EMA (0.999) after a few steps: the decay warm-up keeps the average near
    the recent weights (a fixed 0.999 would still be ~99% the random init), and the
    batch-norm statistics re-estimated for the EMA weights keep its score sane
    (with the live statistics it scored ~190 bits/dim)."""
    _, rec, _ = run(cfg(folder, tmp_path / "run", steps=12, ema_decay=0.999, eval_every=12, sample_every=100))
    evals = [e.test_bpd for e in rec.events if e.kind == "eval"]
    tensors, _ = ckpt.load_checkpoint(tmp_path / "run" / ckpt.CHECKPOINT_NAME)
    live, ema = ckpt.split(tensors, "model"), ckpt.split(tensors, "ema")
    torch.manual_seed(0)
    init = {k: p.detach() for k, p in nc.RealNVP(nc.load(tmp_path / "run" / "model").config).named_parameters()}
    moved = sum(float((live[k] - init[k]).norm()) for k in ema)
    lag = sum(float((live[k] - ema[k]).norm()) for k in ema)
    assert moved > 0 and lag < 0.5 * moved
    assert np.isfinite(evals[-1]) and evals[-1] < evals[0] + 0.1


def test_stop_saves_the_score_of_the_saved_weights_with_its_step(folder, tmp_path):
    """Stopped between evaluations, the model card must not carry the step-0 score as its own."""
    c = cfg(folder, tmp_path / "run", steps=40, eval_every=100, sample_every=100, checkpoint_every=100,
            lr=5e-3, warmup_steps=0)

    def stop_at_4(ev):
        if ev.kind == "progress" and ev.step == 4:
            tr.request_stop()

    rec = Recorder(stop_at_4)
    tr = Trainer(c, rec)
    tr.progress_interval_s = 0.0
    result = tr.run()
    assert result["stopped"] and result["step"] == 4
    evals = [(e.step, e.test_bpd) for e in rec.events if e.kind == "eval"]
    assert [s for s, _ in evals] == [0, 4]  # scored again at the stop
    model = nc.load(tmp_path / "run" / "model")
    meta = model.metadata
    assert meta["test_bpd_step"] == 4 and meta["step"] == 4 and meta["train_bpd_step"] == 4
    assert meta["test_bpd"] == pytest.approx(nc.train.evaluate_bits_per_dim(model, tr.data.test[:8], seed=0),
                                             abs=1e-5)
    assert meta["test_bpd"] != evals[0][1]
    assert "test bits/dim" in rec.events[-1].message and result["test_bpd_step"] == 4
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "test_bpd" in r] == [0, 4]
    assert [r["step"] for r in rows if "train_bpd" in r][-1] == 4  # the stop writes the last training row


def test_first_sample_preview_comes_early(folder, tmp_path):
    _, rec, _ = run(cfg(folder, tmp_path / "a", steps=12, eval_every=100, sample_every=1000, checkpoint_every=100))
    assert [e.step for e in rec.events if e.kind == "samples"] == [10, 12]  # not only at sample_every
    assert (tmp_path / "a" / "samples" / "step_0000010.png").is_file()
    # ... or after first_preview_s seconds on a slow machine, whichever is first
    rec2 = Recorder()
    tr = Trainer(cfg(folder, tmp_path / "b", steps=3, eval_every=100, sample_every=1000, checkpoint_every=100), rec2)
    tr.first_preview_s = 0.0
    tr.run()
    assert [e.step for e in rec2.events if e.kind == "samples"] == [1, 3]


def test_metrics_rows_include_throttled_training_rows(folder, tmp_path):
    tr = Trainer(cfg(folder, tmp_path / "run", steps=4, eval_every=2, sample_every=100))
    tr.progress_interval_s = tr.metrics_interval_s = 0.0  # rows go with progress events
    tr.run()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "train_bpd" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4] and all(np.isfinite(r["train_bpd"]) for r in train)
    assert all(r["lr"] > 0 and r["elapsed_s"] >= 0 for r in train)
    assert [r["step"] for r in rows if "test_bpd" in r] == [0, 2, 4]


def test_model_card_names_the_model(folder, tmp_path):
    run(cfg(folder, tmp_path / "my-run", steps=1, eval_every=100, sample_every=100))
    meta = nc.load(tmp_path / "my-run" / "model").metadata
    assert meta["run_name"] == "my-run" and meta["data_name"] == folder.name
    assert folder.name in meta["name"] and "8×8" in meta["name"] and "my-run" in meta["name"]


def test_model_defaults_come_from_flow_config():
    flow, train_cfg = nc.FlowConfig(), TrainConfig()
    for name in ("width", "blocks", "max_width", "norm"):
        assert getattr(train_cfg, name) == getattr(flow, name), name
    assert train_cfg.size == flow.image_size and train_cfg.flow_config().scales == flow.scales


def test_recalibrate_averages_every_batch_norm_equally_where_update_bn_alone_would_not(tiny_flow):
    """torch's update_bn resets only nn.BatchNorm layers: the flow's BatchNormFlow bijections
    would keep old statistics; recalibrate gives both the equal-weight average over the batches."""
    from nvp_core.layers.norms import BatchNormFlow
    from nvp_core.recalibrate import recalibrate

    gen = torch.Generator().manual_seed(3)
    batches = [torch.rand(6, 3, 16, 16, generator=gen) * 0.9 + 0.05 for _ in range(3)]
    first = next(m for m in tiny_flow.modules() if isinstance(m, BatchNormFlow))
    seen = []
    hook = first.register_forward_pre_hook(lambda m, args: seen.append(args[0].mean(dim=(0, 2, 3), keepdim=True)))
    try:
        torch.optim.swa_utils.update_bn(batches, tiny_flow)
        target = torch.stack(seen).mean(0)  # the equal-weight average of the batches' means
        # update_bn alone: BatchNormFlow is no nn.BatchNorm, so it just lerps on at momentum 0.05
        assert (first.running_mean - target).abs().max() > 1e-3
        assert recalibrate(tiny_flow, batches) == 3
    finally:
        hook.remove()
    torch.testing.assert_close(first.running_mean, target, rtol=1e-5, atol=1e-6)
    assert not tiny_flow.training and first.momentum == tiny_flow.config.norm_momentum  # restored


def test_ema_follows_the_warmed_up_decay():
    from nvp_core.training.ema import EMA

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    ema = EMA(model, decay=0.9)
    expect = [p.detach().clone() for p in model.parameters()]
    for step in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update(step)
        d = min(0.9, (1.0 + step) / (10.0 + step))
        expect = [d * e + (1 - d) * p.detach() for e, p in zip(expect, model.parameters())]
    for e, (_, a) in zip(expect, ema.state_dict().items()):
        torch.testing.assert_close(a, e)


def test_a_batch_that_cannot_fit_is_refused_before_loading(folder, tmp_path, monkeypatch):
    from nvp_core import limits

    c = cfg(folder, tmp_path / "run", batch_size=64)
    need = limits.training_bytes(c.flow_config(), c.size, c.size, c.batch_size)
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": need // 2)
    with pytest.raises(nc.TrainingError, match=r"--batch-size 64 at 8×8 needs about .* more than the .* free"):
        Trainer(c).run()
    assert not (tmp_path / "run" / ckpt.CHECKPOINT_NAME).exists()
    monkeypatch.setattr(limits, "available_memory", lambda device="cpu": need)  # just fits: trains
    assert Trainer(cfg(folder, tmp_path / "run2", batch_size=64, steps=1)).run()["step"] == 1
