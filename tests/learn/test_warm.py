"""Warm re-learning (issue 13): continue from a part model with one extra corrected frame, on a short schedule."""

import numpy as np
import pytest
import torch

from smite.errors import SmiteError
from smite.learn.learner import LearnSettings, PartLearner, miou
from smite.learn.warm import kept_start, relearn, warm_settings, warm_start
from smite.model.conditioning import initial_tokens
from smite.model.partmodel import PartModel
from smite.synthetic.shots import make_shot
from smite.video.settings import SegmentSettings
from smite.video.shot import ShotSegmenter

BASE_STEPS, WARM_STEPS = 30, 6  # per reference; the warm run trains on 2 references


def _model(backbone, names) -> PartModel:
    tokens = initial_tokens(backbone, ["background", *names]) + 0.5
    kv = {k: v + 1e-3 for k, v in backbone.base_kv.items()}
    return PartModel(["background", *names], tokens, kv, backbone.model_id, backbone.fingerprint, backbone.resolution)


def test_warm_start_keeps_tokens_and_kv_and_appends_fresh_parts(tiny_backbone):
    model = _model(tiny_backbone, ["disc", "bar"])
    start = warm_start(model, tiny_backbone, ["disc", "bar", "star"])
    assert start.appended == 1 and start.tokens.shape == (3, model.tokens.shape[1])
    torch.testing.assert_close(start.tokens[:2], model.tokens)
    fresh = initial_tokens(tiny_backbone, ["background", "disc", "bar", "star"])
    torch.testing.assert_close(start.tokens[2], fresh[2])
    assert start.kv is not model.kv and all(torch.equal(start.kv[k], model.kv[k]) for k in model.kv)
    with pytest.raises(SmiteError, match="only be appended"):
        warm_start(model, tiny_backbone, ["bar", "disc"])
    assert warm_settings(model, tiny_backbone).token_steps == 0  # same parts: only the K/V move
    assert warm_settings(model, tiny_backbone, ["disc", "bar", "star"]).token_steps > 0


def _frame_miou(backbone, model, frame, labels) -> float:
    settings = SegmentSettings(preset="fast", edges="bilinear")
    (mattes,) = list(ShotSegmenter(backbone, model, settings).segment([frame]))
    return miou(mattes.labels.astype(np.int64), labels, model.num_parts)


def test_warm_relearn_fixes_the_corrected_frame_in_few_steps(tiny_backbone):
    """Learn from frame 0, take the worst of later frames, add its ground truth: a warm run of WARM_STEPS lifts
    that frame's mIoU clearly, a cold run of the same length on the same two references does not get there, and
    frame 0 stays good."""
    shot = make_shot(num_frames=16, size=(128, 128), num_parts=3, seed=5)
    base = PartLearner(tiny_backbone, LearnSettings.for_backbone(
        tiny_backbone, steps=BASE_STEPS, token_steps=10, eval_every=10)).learn(
        [shot.frames[0]], [shot.labels[0]], shot.part_names)
    scores = {t: _frame_miou(tiny_backbone, base, shot.frames[t], shot.labels[t]) for t in (5, 10, 15)}
    worst = min(scores, key=scores.get)
    frames, masks = [shot.frames[0], shot.frames[worst]], [shot.labels[0], shot.labels[worst]]
    warm = relearn(tiny_backbone, base, frames, masks, settings=warm_settings(base, tiny_backbone, steps=WARM_STEPS,
                                                                               eval_every=2))
    cold = PartLearner(tiny_backbone, LearnSettings.for_backbone(
        tiny_backbone, steps=WARM_STEPS, token_steps=2, eval_every=2)).learn(frames, masks, shot.part_names)
    before, after = scores[worst], _frame_miou(tiny_backbone, warm, shot.frames[worst], shot.labels[worst])
    cold_after = _frame_miou(tiny_backbone, cold, shot.frames[worst], shot.labels[worst])
    first_before = _frame_miou(tiny_backbone, base, shot.frames[0], shot.labels[0])
    first_after = _frame_miou(tiny_backbone, warm, shot.frames[0], shot.labels[0])
    print(f"frame {worst}: base {before:.3f} -> warm {after:.3f} (cold, same steps: {cold_after:.3f}); "
          f"frame 0: {first_before:.3f} -> {first_after:.3f}")
    assert after >= before + 0.05
    assert after >= cold_after + 0.05
    assert first_after >= first_before - 0.05
    assert warm.reference_ids == ["ref0", "ref1"] and warm.part_names == base.part_names
    assert not kept_start(warm) and not kept_start(base)


def test_a_warm_run_that_improves_nothing_returns_its_start_and_says_so(tiny_backbone):
    """With the K/V frozen (learning rate 0) no step can score higher than the start on the references: the run
    returns the starting model unchanged, and ``kept_start`` tells the caller (the CLI prints a note, the daemon's
    result carries ``kept_start``)."""
    shot = make_shot(num_frames=2, size=(128, 128), num_parts=2, seed=1)
    base = _model(tiny_backbone, shot.part_names)
    warm = relearn(tiny_backbone, base, list(shot.frames), list(shot.labels),
                   settings=warm_settings(base, tiny_backbone, steps=2, eval_every=1, lr_kv=0.0))
    assert kept_start(warm) and warm.training["selected_step"] == 0
    torch.testing.assert_close(warm.tokens, base.tokens)
    assert all(torch.equal(warm.kv[k], base.kv[k].to(warm.kv[k].dtype)) for k in base.kv)


def test_cli_learn_from_continues_a_model_and_daemon_takes_from_model(tmp_path, capsys):
    """`smite learn --from`: the parts default to the model's; the new model keeps them and names both references.
    The daemon's learn request takes ``from_model`` (a stored model; a missing one is not_found)."""
    from smite_server import requests as rq
    from smite_server.protocol import ProtocolError
    from smite_server.store import ModelStore
    from smite_server.submit import learn_job

    from smite.cli import main
    from smite.synthetic.shots import write_shot

    shot = make_shot(num_frames=3, size=(128, 128), num_parts=2, seed=1)
    paths = write_shot(shot, tmp_path / "shot")
    first, second = tmp_path / "a.smite", tmp_path / "b.smite"
    common = ["--frames", paths["plates"], "--masks", paths["masks"], "--backbone", "tiny", "--steps", "2"]
    assert main(["learn", "--refs", "1", "--names", ",".join(shot.part_names), "-o", str(first), *common]) == 0
    capsys.readouterr()
    assert main(["learn", "--refs", "1,3", "--from", str(first), "-o", str(second), *common]) == 0
    model = PartModel.load(second)
    assert ("kept the model it started from" in capsys.readouterr().err) == kept_start(model)
    assert model.part_names == PartModel.load(first).part_names and model.reference_ids == ["plate.0001.png",
                                                                                              "plate.0003.png"]
    capsys.readouterr()
    args = {"frames": [{"path": "/a.png"}], "masks": [{"path": "/m.png"}], "parts": ["disc"], "name": "m2",
            "from_model": "m1"}
    req = rq.parse_learn(args, 0)
    assert req.from_model == "m1"
    with pytest.raises(ProtocolError, match="from_model"):
        learn_job(req, [], None, ModelStore(tmp_path / "store"))
