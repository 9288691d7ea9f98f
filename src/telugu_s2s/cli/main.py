"""`telugu-s2s`: run the local stack, talk to it, benchmark it, train the models."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from telugu_s2s.common import settings
from telugu_s2s.local.stack import REPO_ROOT, StackConfig


def _add_stack_flags(p: argparse.ArgumentParser) -> None:
    settings.add_flags(p.add_argument_group("stack"), StackConfig)


def _stack_config(a: argparse.Namespace) -> StackConfig:
    from telugu_s2s.local.procs import StackError

    try:
        return settings.from_args(StackConfig, a)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated()


def cmd_up(a: argparse.Namespace) -> int:
    from telugu_s2s.local.procs import StackError
    from telugu_s2s.local.stack import LocalStack, wait_forever

    signal.signal(signal.SIGTERM, _raise_terminated)
    stack = LocalStack(_stack_config(a), say=lambda m: print(m, flush=True))
    try:
        stack.start()
        # Lets `telugu-s2s bench` attribute CPU to this stack's processes.
        pids_file = stack.cfg.run_dir / "pids.json"
        pids_file.write_text(json.dumps(stack.pids()))
        if stack.cfg.weights_missing():
            _banner_random(stack.cfg.weights_missing())
        print("\ntelugu-s2s is up:", flush=True)
        for name, where in stack.endpoints():
            print(f"  {name:28s} {where}", flush=True)
        print("\nTalk to it:  telugu-s2s talk --input examples/namaskaram.wav --voice priya --output reply.wav")
        print("Stop it:     Ctrl-C\n", flush=True)
        dead = wait_forever(stack)
        print(f"{dead} exited unexpectedly; stopping the stack (see {stack.cfg.run_dir / 'logs'})", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, _Terminated):
        print("\nstopping...", flush=True)
        return 0
    finally:
        # A second Ctrl-C must not abandon half-stopped services.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        (stack.cfg.run_dir / "pids.json").unlink(missing_ok=True)


def _banner_random(missing: list[str]) -> None:
    bar = "!" * 78
    print(
        f"\n{bar}\n!! UNTRAINED WEIGHTS: {', '.join(missing)} not found.\n"
        "!! The service runs end to end, but its replies are noise, not Telugu.\n"
        "!! Get real weights: `telugu-s2s train all` (docs/training.md).\n"
        f"{bar}\n",
        file=sys.stderr,
        flush=True,
    )


def cmd_talk(a: argparse.Namespace) -> int:
    from telugu_s2s.cli.talk import talk

    return talk(a)


def cmd_voices(a: argparse.Namespace) -> int:
    from telugu_s2s.cli.talk import voices

    return voices(a)


def cmd_demo(a: argparse.Namespace) -> int:
    from telugu_s2s.cli.demo import demo

    return demo(a, _stack_config(a), _banner_random)


def _levels(text: str) -> str:
    """--sweep: comma-separated positive caller counts, e.g. 1,4,8,16,32 ("": no sweep)."""
    if not text:
        return text
    try:
        ok = all(int(x) >= 1 for x in text.split(","))
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(f"expected caller counts like 1,4,8,16, got {text!r}")
    return text


def cmd_bench(a: argparse.Namespace) -> int:
    from telugu_s2s.client.bench import main as bench_main

    # The callers yield the cores to the stack (lower only: raising would need privileges).
    os.nice(max(0, a.nice))
    return bench_main(a)


# `telugu-s2s train all|encode|export ...` reach the pipeline's own top-level stages.
TRAIN_STAGES = ("all", "encode", "export")


def cmd_training(a: argparse.Namespace, rest: list[str]) -> int:
    from telugu_s2s.training.cli import main as training_main

    if a.command == "train" and rest and rest[0] in TRAIN_STAGES:
        return int(training_main(rest) or 0)
    return int(training_main([a.command, *rest]) or 0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="telugu-s2s", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole stack locally (Ctrl-C stops it)")
    _add_stack_flags(up)
    up.set_defaults(func=cmd_up)

    talk = sub.add_parser("talk", help="speak an audio file to the gateway and save the reply")
    talk.add_argument(
        "--input",
        type=Path,
        required=True,
        help="audio file: WAV (PCM, float, EXTENSIBLE, mu-law, A-law), FLAC or OGG; any rate",
    )
    talk.add_argument("--output", type=Path, required=True, help="reply WAV to write")
    talk.add_argument("--voice", default="", help="arjun, ravi, priya or lakshmi")
    talk.add_argument("--session", default="", help="resume this session id")
    talk.add_argument("--target", default="127.0.0.1:50051", help="gateway host:port")
    mode = talk.add_mutually_exclusive_group()
    mode.add_argument(
        "--realtime", dest="realtime", action="store_true", default=True, help="send audio at real-time pace (default)"
    )
    mode.add_argument("--fast", dest="realtime", action="store_false", help="send audio as fast as possible")
    talk.add_argument("--output-rate", type=int, default=16000, help="reply sample rate (8000/16000/24000/48000)")
    talk.add_argument(
        "--encoding",
        choices=("pcm16", "mulaw", "alaw"),
        default="pcm16",
        help="how the audio goes on the wire (mulaw/alaw: telephony, 8000 Hz)",
    )
    talk.add_argument(
        "--rate", type=int, default=0, help="wire sample rate (default 16000 for pcm16, 8000 for mulaw/alaw)"
    )
    talk.add_argument("--api-key", default="", help="bearer key for a gateway that requires one")
    talk.add_argument("--ca-file", default="", help="CA certificate (PEM) of a gateway that serves TLS")
    talk.set_defaults(func=cmd_talk)

    voices = sub.add_parser("voices", help="list the voices")
    voices.add_argument("--target", default="127.0.0.1:50051", help="gateway host:port")
    voices.set_defaults(func=cmd_voices)

    demo = sub.add_parser("demo", help="start the stack, ask a Telugu question in two voices, save the replies")
    _add_stack_flags(demo)
    demo.add_argument("--out-dir", type=Path, default=REPO_ROOT / "out", help="where the reply WAVs go")
    demo.set_defaults(func=cmd_demo)

    bench = sub.add_parser("bench", help="simulate concurrent callers against a running stack")
    bench.add_argument("--sessions", type=int, default=1, help="concurrent callers")
    bench.add_argument("--turns", type=int, default=3, help="turns per caller")
    bench.add_argument(
        "--sweep",
        type=_levels,
        default="",
        help="callers per level, e.g. 1,4,8,16,32: one run per level and the capacity figure "
        "(most callers with response p95 <= 150 ms and no errors)",
    )
    bench.add_argument("--plot", default="", help="with --sweep: latency against callers as a PNG here")
    bench.add_argument("--target", default="127.0.0.1:50051", help="gateway host:port")
    bench.add_argument("--examples", default=str(REPO_ROOT / "examples"), help="WAV file or folder of questions")
    bench.add_argument("--barge-in-share", type=float, default=0.0, help="share of replies the callers talk over")
    bench.add_argument("--voice", default="", help="one voice for all callers (default: rotate the four)")
    bench.add_argument(
        "--turn-detection",
        choices=("", "silence", "turn_model"),
        default="",
        help="how the gateway ends the callers' turns (default: the gateway's own default, turn_model)",
    )
    bench.add_argument("--eagerness", choices=("", "low", "medium", "high"), default="", help="with turn_model")
    bench.add_argument(
        "--telephone", action="store_true", help="callers send 8 kHz mu-law and take 8 kHz audio back (a phone line)"
    )
    bench.add_argument(
        "--ramp-s",
        type=float,
        default=1.0,
        help="callers start at random within this many seconds (1 = nearly together: their turns end in "
        "bursts; a turn's length or more = spread out, as independent callers are)",
    )
    bench.add_argument(
        "--nice",
        type=int,
        default=10,
        help="the callers' scheduling priority (os.nice increment; 0 = the stack's own): callers are on "
        "other machines in production, so here they yield the shared cores to the stack",
    )
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--json", default="", help="write the results as JSON here")
    bench.add_argument("--markdown", default="", help="write the Markdown table here")
    bench.add_argument("--api-key", default="", help="bearer key for a gateway that requires one")
    bench.add_argument(
        "--run-dir",
        type=Path,
        default=StackConfig().run_dir,
        help="the stack's run dir: its pids.json attributes CPU to this stack's processes",
    )
    bench.add_argument(
        "--codec-metrics",
        default=f"http://127.0.0.1:{StackConfig().codec_metrics_port}/metrics",
        help="the codec replicas' Prometheus URLs, comma-separated ('' = off): streaming compute per audio second",
    )
    bench.add_argument(
        "--codec-checkpoint",
        type=Path,
        default=StackConfig().codec_checkpoint_dir,
        help="the codec the stack runs, timed offline after the levels for the streaming/offline ratio",
    )
    bench.set_defaults(func=cmd_bench)

    from telugu_s2s.cli import keys as keys_cli

    keys_cli.add_parser(sub)

    for name, text in (
        ("data", "make the training corpus"),
        ("train", "train the codec / S2S models (`train all` runs the whole pipeline)"),
        ("eval", "evaluate the trained models"),
    ):
        t = sub.add_parser(name, help=text, add_help=False)
        t.set_defaults(func=None)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] in ("data", "train", "eval"):
        a = argparse.Namespace(command=argv[0])
        return cmd_training(a, argv[1:])
    a = parser.parse_args(argv)
    return int(a.func(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
