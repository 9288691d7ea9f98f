"""Command line of the training pipeline.

    python -m telugu_s2s.training data synth [--data-dir .data]
    python -m telugu_s2s.training train codec [--steps N] [--device cpu|cuda]
    python -m telugu_s2s.training encode
    python -m telugu_s2s.training train s2s [--steps N]
    python -m telugu_s2s.training eval [--json out.json] [--official-weights PATH]
    python -m telugu_s2s.training export [--triton-repo DIR]
    python -m telugu_s2s.training all      # data -> codec -> S2S corpus -> encode -> s2s -> eval -> export
    python -m telugu_s2s.training turn     # the end-of-turn model: data -> train -> presets -> test -> weights

`telugu-s2s data|train|eval ...` delegates here (`main(argv)`). Every stage is resumable:
training checkpoints live in --runs-dir and a rerun continues from them.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

log = logging.getLogger("telugu_s2s.training")

# `all`'s S2S schedule: with the listener a step takes about 0.7 s on 2 CPU cores (1.42-1.50
# steps/s measured, runs F and G), so 6000 steps (~70 min) plus the listener's 3000-step
# warm-up (~9 min) keep the whole command within 120 minutes (docs/training.md).
ALL_S2S_STEPS = 6000


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=Path(".data"), help="corpus dir (default .data)")
    p.add_argument("--models-dir", type=Path, default=Path("models"), help="checkpoints out (default models)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="resumable training state (default runs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of S2SConfig fields")
    return value


def _ms_pair(text: str) -> tuple[int, int]:
    try:
        lead, tail = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LEAD,TAIL in ms, e.g. 300,100") from None
    if lead < 0 or tail < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: padding must be >= 0 ms")
    return lead, tail


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number, e.g. 0.1") from None
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"{text!r}: must be in [0, 0.5)")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number, e.g. 3") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{text!r}: must be >= {least}")
    return value


def _at_least_one(text: str) -> int:
    return _whole(text, 1)


def _at_least_zero(text: str) -> int:
    return _whole(text, 0)


LOSS_TERMS = ("mel", "stft", "adv", "fm", "f0", "voicing")


def _loss_weights(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected NAME=NUMBER, e.g. mel=10") from None
        if key not in LOSS_TERMS or weight < 0:
            raise argparse.ArgumentTypeError(f"{part!r}: NAME is one of {', '.join(LOSS_TERMS)}, NUMBER >= 0")
        out[f"{key}_weight"] = weight
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="telugu-s2s", description="Telugu S2S training pipeline")
    sub = p.add_subparsers(dest="cmd", required=True)
    data = sub.add_parser("data", help="corpus commands")
    dsub = data.add_subparsers(dest="data_cmd", required=True)
    ds = dsub.add_parser("synth", help="render the Telugu corpus with espeak-ng")
    _common(ds)
    ds.add_argument("--workers", type=int, default=2)
    ds.add_argument(
        "--more-callers",
        action="store_true",
        help="20 more espeak-ng training callers (30 in all) and 2 more held-out ones (4 in all)",
    )
    ds.add_argument(
        "--wide-callers",
        action="store_true",
        help="24 more espeak-ng training callers, from variants no other voice uses",
    )
    ds.add_argument(
        "--wide-variants",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="clips per (wide caller, utterance) (default: --variants)",
    )
    ds.add_argument(
        "--more-sentences",
        type=_at_least_zero,
        default=0,
        metavar="N",
        help="N clips per training caller of each training-only sentence of corpus.MORE_* "
        "(2 more phrasings per question, name introduction and recall; more out-of-domain "
        "sentences); 0 = without them (default)",
    )
    ds.add_argument(
        "--formant-jitter",
        type=_share,
        default=0.0,
        metavar="F",
        help="per-clip vocal-tract scale 1 +- F for training callers (e.g. 0.1; 0 = off)",
    )
    ds.add_argument(
        "--variants",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="clips per (training caller, utterance), each rendered and degraded anew (default 1)",
    )

    train = sub.add_parser("train", help="train a model")
    tsub = train.add_subparsers(dest="train_cmd", required=True)
    tc = tsub.add_parser("codec", help="train the Telugu codec")
    _common(tc)
    tc.add_argument("--steps", type=int, default=None)
    tc.add_argument("--batch-size", type=int, default=None)
    tc.add_argument("--lr", type=float, default=None, help="peak learning rate of the codec (default 1.5e-3)")
    tc.add_argument(
        "--adversarial",
        action="store_true",
        help="add the multi-period and multi-scale STFT critics (feature matching) and the linear STFT loss",
    )
    tc.add_argument(
        "--harmonic",
        action="store_true",
        help="the harmonic-plus-noise decoder (an oscillator at the F0 read from the codes) with F0 and "
        "voicing losses and the linear STFT loss; with --init-from, the encoder and quantizer start from it",
    )
    tc.add_argument(
        "--loss-weights",
        type=_loss_weights,
        default=None,
        metavar="K=V,...",
        help="weights of mel, stft, adv, fm, f0, voicing (with --adversarial default mel=15,stft=5,adv=1,fm=2; "
        "with --harmonic stft=1,f0=1,voicing=0.3)",
    )
    tc.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="start from this codec checkpoint (same arch, or its encoder and quantizer with --harmonic; no quantizer bypass)",
    )
    tc.add_argument(
        "--freeze-codes",
        action="store_true",
        help="with --init-from: train the decoder alone, so every input keeps its codes",
    )
    tc.add_argument("--ckpt-every", type=int, default=None, metavar="N", help="steps between checkpoints (default 50)")
    tc.add_argument(
        "--max-files", type=int, default=None, metavar="N", help="train on N of the split's files (default all)"
    )
    tc.add_argument(
        "--pack",
        type=Path,
        default=None,
        metavar="FILE",
        help="only write the training audio (references + --max-files in all) to FILE, to train elsewhere "
        "with FILE as <data-dir>/codec_clips.npz",
    )
    ts = tsub.add_parser("s2s", help="train the S2S transformer (needs `encode` first)")
    _common(ts)
    ts.add_argument("--steps", type=int, default=None)
    ts.add_argument("--batch-size", type=int, default=None)
    ts.add_argument("--val-every", type=int, default=None, help="steps between quick held-out checks (0 = off)")
    ts.add_argument(
        "--model",
        type=_json_object,
        default=None,
        help='S2SConfig overrides as JSON, e.g. \'{"acoustic_dim": 64, "bidirectional_prefix": true}\'',
    )
    ts.add_argument(
        "--recognition-batch",
        type=int,
        default=None,
        help="lone user turns per step for the reply-class head (0 = off)",
    )
    ts.add_argument(
        "--listener-pretrain",
        type=int,
        default=None,
        metavar="N",
        help="steps of listener-only training before a fresh run's first step (default 3000; 0 = none)",
    )
    ts.add_argument(
        "--ctc-weight",
        type=float,
        default=None,
        help="the listener's CTC spelling head (training only): its share of the listener's loss (default 0 = off)",
    )
    ts.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="start a fresh run from this checkpoint's weights where they fit (new parts start as built)",
    )
    ts.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-3)")
    ts.add_argument(
        "--loader-workers",
        type=int,
        default=None,
        metavar="N",
        help="processes that compose batches ahead of the model (for a GPU; default 0 = in the loop)",
    )

    enc = sub.add_parser("encode", help="encode the corpus with the trained codec")
    _common(enc)

    ev = sub.add_parser("eval", help="evaluate codec and S2S on held-out caller voices")
    _common(ev)
    ev.add_argument("--json", type=Path, default=None, help="write the scores here")
    ev.add_argument("--official-weights", type=Path, default=None, help="encodec_24khz-d7cc33bc.th to compare")
    ev.add_argument("--split", default="test")
    ev.add_argument("--max-turns", type=int, default=0)
    ev.add_argument("--turn-stride", type=int, default=1, help="score every n-th turn (1 = all)")
    ev.add_argument(
        "--user-padding-ms",
        type=_ms_pair,
        default=(0, 0),
        metavar="LEAD,TAIL",
        help="silence before/after each user turn, e.g. 300,100 as the gateway hands turns over",
    )
    ev.add_argument(
        "--context-replies",
        choices=("generated", "reference"),
        default="generated",
        help="earlier turns' replies in the context: the model's own, as served (default), or the right answers",
    )
    ev.add_argument("--skip-codec", action="store_true")
    ev.add_argument(
        "--codec-report",
        action="store_true",
        help="only the codec report: STOI, PESQ-wb, F0 and voicing beside Opus and the telephone line",
    )
    ev.add_argument("--skip-s2s", action="store_true")
    ev.add_argument(
        "--served",
        action="store_true",
        help="speak the test dialogues into a running stack (--target) at real-time pace and score its replies",
    )
    ev.add_argument("--target", default="127.0.0.1:50051", help="gateway address for --served")
    ev.add_argument("--concurrency", type=_at_least_one, default=4, help="calls at once for --served")
    ev.add_argument("--max-dialogues", type=int, default=0, help="--served: at most this many calls (0 = all)")
    ev.add_argument("--api-key", default="", help="--served: API key for a gateway that requires one")

    ex = sub.add_parser("export", help="write models/MANIFEST.json; copy the S2S checkpoint to Triton")
    _common(ex)
    ex.add_argument("--eval-json", type=Path, default=None)
    ex.add_argument(
        "--served-eval-json",
        type=Path,
        default=None,
        help="the report of `eval --served --json ...` against a stack serving these models",
    )
    ex.add_argument("--triton-repo", type=Path, default=None, help="Triton model repository to copy into")

    al = sub.add_parser("all", help="data -> codec -> S2S corpus -> encode -> s2s -> eval -> export")
    _common(al)
    al.add_argument("--codec-steps", type=int, default=None)
    al.add_argument(
        "--codec-harmonic-steps",
        type=int,
        default=6000,
        help="steps of the harmonic decoder trained on the codec's codes (default 6000)",
    )
    al.add_argument(
        "--s2s-steps",
        type=int,
        default=ALL_S2S_STEPS,
        help=f"S2S steps after the listener's warm-up (default {ALL_S2S_STEPS}: the 120-minute budget on 2 CPU cores)",
    )
    al.add_argument("--triton-repo", type=Path, default=None)
    al.add_argument("--official-weights", type=Path, default=None)
    al.add_argument(
        "--s2s-callers",
        choices=("more", "default"),
        default="more",
        help="callers of the S2S corpus: 22 (more, default) or the codec corpus's 10",
    )
    al.add_argument(
        "--s2s-variants",
        type=_at_least_one,
        default=3,
        metavar="N",
        help="clips per (training caller, utterance) in the S2S corpus (default 3)",
    )
    al.add_argument(
        "--s2s-formant-jitter",
        type=_share,
        default=0.1,
        metavar="F",
        help="vocal-tract jitter of the S2S corpus (default 0.1; 0 with --s2s-callers default "
        "trains S2S on the codec corpus itself)",
    )
    tt = sub.add_parser("turn", help="the end-of-turn model: data, training, presets, test, weights")
    tt.add_argument("--data-dir", type=Path, default=Path(".data/turn"), help="its corpus (default .data/turn)")
    tt.add_argument("--steps", type=int, default=12000)
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    tt.add_argument(
        "--clips",
        default="360,150,60",
        metavar="TRAIN,VAL,TEST",
        help="clips per caller in each split (default 360,150,60)",
    )
    tt.add_argument(
        "--wide-callers",
        action="store_true",
        help="also the S2S corpus's 24 wide callers: 20 train, 4 join validation (tried, not shipped)",
    )
    tt.add_argument(
        "--remove-shape",
        action="store_true",
        help="train on inputs without the speech's mean spectral shape (the caller's timbre)",
    )
    tt.add_argument("--out", type=Path, default=None, help="weights file (default: the package's own)")
    tt.add_argument("--json", type=Path, default=None, help="write the training and test report here")
    tt.add_argument("--eval-only", action="store_true", help="test the weights in --out, train nothing")
    tt.add_argument(
        "--retune", action="store_true", help="choose the presets again for the weights in --out, test, rewrite"
    )
    return p


def _threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def cmd_synth(args) -> dict:
    from telugu_s2s.training.synth import (
        SynthConfig,
        callers_with_more,
        callers_with_wide,
        held_out_with_more,
        synth,
    )

    cfg = SynthConfig(
        data_dir=args.data_dir,
        seed=args.seed,
        workers=args.workers,
        jitter_formant=getattr(args, "formant_jitter", 0.0),
        train_variants=getattr(args, "variants", 1),
        wide_variants=getattr(args, "wide_variants", None) or 0,
        more_sentences=getattr(args, "more_sentences", 0),
    )
    if getattr(args, "more_callers", False):
        cfg = replace(
            cfg, callers=callers_with_more(cfg.callers, cfg.held_out), held_out=held_out_with_more(cfg.held_out)
        )
    if getattr(args, "wide_callers", False):
        cfg = replace(cfg, callers=callers_with_wide(cfg.callers, cfg.held_out))
    return synth(cfg, progress=not args.no_progress)


def _run(args, stage: str) -> dict:
    """The settings every training stage takes from the common flags."""
    return {
        "data_dir": args.data_dir,
        "run_dir": args.runs_dir / stage,
        "out_dir": args.models_dir / stage,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "progress": not args.no_progress,
    }


def _schedule(cfg, args, steps: int | None):
    """`cfg` with the steps (`steps`, else --steps) and --batch-size given, if any."""
    steps = steps or getattr(args, "steps", None)
    if steps:
        cfg = replace(cfg, steps=steps)
    if getattr(args, "batch_size", None):
        cfg = replace(cfg, batch_size=args.batch_size)
    return cfg


def cmd_codec(args, steps: int | None = None) -> dict:
    from telugu_s2s.training.codec_train import CodecTrainConfig, pack_clips, train_codec

    cfg = _schedule(CodecTrainConfig(**_run(args, "codec")), args, steps)
    if getattr(args, "pack", None):
        return pack_clips(args.data_dir, args.pack, cfg.arch.sample_rate, args.max_files or 0, args.seed)
    over: dict = {k: getattr(args, k, None) for k in ("lr", "max_files", "init_from")}
    if getattr(args, "adversarial", False):
        over.update(adversarial=True, mel_weight=15.0, stft_weight=5.0)
    if getattr(args, "harmonic", False):
        over.update(
            arch=replace(cfg.arch, decoder="harmonic"), stft_weight=1.0, run_dir=args.runs_dir / "codec-harmonic"
        )
        over["lr"] = over["lr"] or 1e-3
    over.update(getattr(args, "loss_weights", None) or {})
    if over["init_from"] is not None:  # a trained latent needs no bypass, nor k-means (re-)inits
        over.update(bypass_steps=0, reinit_below=0.0)
    if getattr(args, "freeze_codes", False):
        over["freeze_codes"] = True
    if getattr(args, "ckpt_every", None):
        over["ckpt_every"] = args.ckpt_every
    return train_codec(replace(cfg, **{k: v for k, v in over.items() if v is not None}))


def cmd_encode(args) -> dict:
    from telugu_s2s.training.encode import encode_corpus

    _threads(args)
    t0 = time.perf_counter()
    out = encode_corpus(args.data_dir, args.models_dir / "codec", progress=not args.no_progress)
    return {"codes": str(out), "seconds": round(time.perf_counter() - t0, 1)}


def cmd_s2s(args, steps: int | None = None) -> dict:
    from telugu_s2s.training.s2s_train import S2STrainConfig, train_s2s

    cfg = _schedule(S2STrainConfig(**_run(args, "s2s"), codec_dir=args.models_dir / "codec"), args, steps)
    if getattr(args, "val_every", None) is not None:
        cfg = replace(cfg, val_every=args.val_every)
    if getattr(args, "model", None):
        cfg = replace(cfg, model=args.model)
    if getattr(args, "recognition_batch", None) is not None:
        cfg = replace(cfg, recognition_batch=args.recognition_batch)
    if getattr(args, "listener_pretrain", None) is not None:
        cfg = replace(cfg, listener_pretrain=args.listener_pretrain)
    if getattr(args, "init_from", None) is not None:
        cfg = replace(cfg, init_from=args.init_from)
    if getattr(args, "ctc_weight", None) is not None:
        cfg = replace(cfg, ctc_weight=args.ctc_weight)
    if getattr(args, "lr", None) is not None:
        cfg = replace(cfg, lr=args.lr)
    if getattr(args, "loader_workers", None) is not None:
        cfg = replace(cfg, loader_workers=args.loader_workers)
    return train_s2s(cfg)


def cmd_eval(args) -> dict:
    from telugu_s2s.training.evaluate import EvalConfig, evaluate

    if getattr(args, "codec_report", False):
        from telugu_s2s.training.codec_report import ReportConfig, codec_report

        _threads(args)
        report = ReportConfig(args.data_dir, args.models_dir / "codec", progress=not args.no_progress)
        return _report(codec_report(report), args)
    if getattr(args, "served", False):
        from telugu_s2s.training.served_eval import ServedEvalConfig, eval_served

        _threads(args)
        result = eval_served(
            ServedEvalConfig(
                target=args.target,
                data_dir=args.data_dir,
                codec_dir=args.models_dir / "codec",
                split=args.split,
                concurrency=args.concurrency,
                turn_stride=args.turn_stride,
                max_dialogues=args.max_dialogues,
                api_key=args.api_key,
                progress=not args.no_progress,
            )
        )
        return _report(result, args)
    cfg = EvalConfig(
        data_dir=args.data_dir,
        codec_dir=args.models_dir / "codec",
        s2s_dir=args.models_dir / "s2s",
        split=getattr(args, "split", "test"),
        official_weights=getattr(args, "official_weights", None),
        max_turns=getattr(args, "max_turns", 0),
        turn_stride=getattr(args, "turn_stride", 1),
        user_lead_ms=getattr(args, "user_padding_ms", (0, 0))[0],
        user_tail_ms=getattr(args, "user_padding_ms", (0, 0))[1],
        context_replies=getattr(args, "context_replies", "generated"),
        threads=args.threads,
        progress=not args.no_progress,
        skip_codec=getattr(args, "skip_codec", False),
        skip_s2s=getattr(args, "skip_s2s", False),
    )
    return _report(evaluate(cfg), args)


def _report(result: dict, args) -> dict:
    summary = {k: v for k, v in result.items() if k != "details"}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if getattr(args, "json", None):
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def cmd_export(
    args,
    eval_scores: dict | None = None,
    timings: dict | None = None,
    command: str | None = None,
    codec_data_dir: Path | None = None,
) -> dict:
    from telugu_s2s.training.export import export_triton, write_manifest
    from telugu_s2s.training.synth import load_info

    if eval_scores is None and getattr(args, "eval_json", None):
        eval_scores = json.loads(Path(args.eval_json).read_text())
    if eval_scores:
        eval_scores = {k: v for k, v in eval_scores.items() if k != "details"}
    extra = {}
    if codec_data_dir is not None and Path(codec_data_dir) != Path(args.data_dir):
        codec_info = load_info(codec_data_dir)
        extra = {"codec_data_version": codec_info.get("data_version"), "codec_data_counts": codec_info.get("counts")}
    if getattr(args, "served_eval_json", None):
        served = json.loads(Path(args.served_eval_json).read_text())
        extra["eval_served"] = {k: v for k, v in served.items() if k != "details"}
    path = write_manifest(
        args.models_dir,
        command=command or "python -m telugu_s2s.training " + shlex.join(sys.argv[1:]),
        data_info=load_info(args.data_dir),
        eval_scores=eval_scores,
        timings=timings,
        extra=extra or None,
    )
    out = {"manifest": str(path)}
    if getattr(args, "triton_repo", None):
        out["triton"] = str(export_triton(args.models_dir / "s2s", args.triton_repo))
    return out


def cmd_all(args) -> dict:
    timings: dict[str, float] = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        log.info("=== %s", name)
        res = fn()
        timings[name] = round(time.perf_counter() - t0, 1)
        log.info("=== %s done in %.1fs", name, timings[name])
        return res

    args.workers = 2
    args.more_callers, args.formant_jitter, args.variants = False, 0.0, 1
    stage("data_synth", lambda: cmd_synth(args))
    codec = stage("train_codec", lambda: cmd_codec(args, args.codec_steps))
    # then the harmonic decoder on the same codes (the encoder and quantizer stay as trained)
    harmonic = argparse.Namespace(
        **{**vars(args), "harmonic": True, "freeze_codes": True, "init_from": args.models_dir / "codec"}
    )
    stage("train_codec_harmonic", lambda: cmd_codec(harmonic, args.codec_harmonic_steps))
    s2s_args = s2s_corpus_args(args)
    if s2s_args is not args:
        stage("data_synth_s2s", lambda: cmd_synth(s2s_args))
    stage("encode", lambda: cmd_encode(s2s_args))
    s2s = stage("train_s2s", lambda: cmd_s2s(s2s_args, args.s2s_steps))
    s2s_args.json = args.runs_dir / "eval.json"
    scores = stage("eval", lambda: cmd_eval(s2s_args))
    timings["total"] = round(sum(timings.values()), 1)
    timings["codec_steps_per_s"] = codec.get("steps_per_s")
    timings["s2s_steps_per_s"] = s2s.get("steps_per_s")
    command = "python -m telugu_s2s.training " + shlex.join(sys.argv[1:] if sys.argv[1:] else ["all"])
    return cmd_export(s2s_args, scores, timings, command, codec_data_dir=args.data_dir)


def s2s_corpus_args(args) -> argparse.Namespace:
    """The arguments of `all`'s S2S stages (synth, encode, train, eval).

    The codec learns the sound of Telugu from the default corpus; the S2S model has to tell what
    was said by voices it never heard, so by default it trains on a richer corpus in
    <data-dir>/s2s: 30 training callers, 3 clips of every utterance per caller, each at its own
    vocal-tract scale. Its test and val hold 4 held-out callers. Without those options the S2S
    stages use the codec corpus itself (`args`).
    """
    more = args.s2s_callers == "more"
    if not more and not args.s2s_formant_jitter and args.s2s_variants == 1:
        return args
    return argparse.Namespace(
        **{
            **vars(args),
            "data_dir": args.data_dir / "s2s",
            "more_callers": more,
            "formant_jitter": args.s2s_formant_jitter,
            "variants": args.s2s_variants,
        }
    )


def cmd_turn(args) -> dict:
    from telugu_s2s.training import turn_data, turn_train
    from telugu_s2s.turn.model import DEFAULT_WEIGHTS, PEAK, PEAK_AND_SHAPE, TurnModel

    _threads(args)
    try:
        n_train, n_val, n_test = (int(v) for v in args.clips.split(","))
    except ValueError:
        raise SystemExit(f"--clips {args.clips!r}: expected TRAIN,VAL,TEST clips per caller, e.g. 120,150,60") from None
    out = args.out or DEFAULT_WEIGHTS
    t0 = time.perf_counter()
    if not (args.data_dir / "info.json").is_file():
        turn_data.build(
            args.data_dir, {"train": n_train, "val": n_val, "test": n_test}, seed=args.seed, wide=args.wide_callers
        )
    info = json.loads((args.data_dir / "info.json").read_text())
    timings = {"data_s": round(time.perf_counter() - t0, 1)}
    if args.eval_only or args.retune:
        model = TurnModel.load(out)
        report = card = {**model.card}
        timings = {**card.get("timings", {}), **timings}
    else:
        trained = turn_train.train(args.data_dir, steps=args.steps, seed=args.seed, remove_shape=args.remove_shape)
        timings["train_s"] = trained["seconds"]
        card = {"data": info, "steps": args.steps, "history": trained["history"], "presets": {}}
        card["normalization"] = PEAK_AND_SHAPE if args.remove_shape else PEAK
        model = TurnModel(trained["params"], card)
    if not args.eval_only:
        card["data"] = info
        val = turn_data.Split.load(args.data_dir, "val")
        presets, grid = turn_train.choose_presets(val, turn_train.ask_probs(model, val))
        card["presets"] = presets
        card["val_grid"] = grid
        report = card
    test = turn_data.Split.load(args.data_dir, "test")
    report["test"] = turn_train.evaluate(TurnModel(model.params, report), test)
    report["bursts"] = {
        "under_250ms": turn_train.evaluate_bursts(seed=args.seed),
        "control_300_600ms": turn_train.evaluate_bursts(n=100, seed=args.seed + 1, lo_ms=300, hi_ms=600),
    }
    command = "python -m telugu_s2s.training " + shlex.join(sys.argv[1:])
    if args.eval_only or args.retune:  # keep how the weights were trained
        timings[("retune_s" if args.retune else "eval_s")] = round(time.perf_counter() - t0, 1)
        report["retuned_with" if args.retune else "evaluated_with"] = command
    else:
        timings["total_s"] = round(time.perf_counter() - t0, 1)
        report["command"] = command
    report["timings"] = timings
    if not args.eval_only:
        turn_train.export(model.params, report, out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return {"weights": str(out), "presets": report["presets"], "test": report["test"], "timings": timings}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.cmd == "data":
            res = cmd_synth(args)
        elif args.cmd == "train":
            res = cmd_codec(args) if args.train_cmd == "codec" else cmd_s2s(args)
        elif args.cmd == "encode":
            res = cmd_encode(args)
        elif args.cmd == "eval":
            cmd_eval(args)
            return 0
        elif args.cmd == "export":
            res = cmd_export(args)
        elif args.cmd == "turn":
            res = cmd_turn(args)
        else:
            res = cmd_all(args)
    except FileNotFoundError as exc:
        log.error("%s", exc)
        return 2
    except Exception as exc:  # DataValidationError and friends: loud, non-zero
        from telugu_s2s.training.synth import DataValidationError

        if isinstance(exc, DataValidationError):
            log.error("%s", exc)
            return 3
        raise
    print(json.dumps(res, indent=2, ensure_ascii=False, default=str))
    return 0
