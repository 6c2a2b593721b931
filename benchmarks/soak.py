"""Soak a real gateway with streams, unary calls, HTTP calls, cancels and timeouts, and
measure the growth of its RSS over the run's second half (Triton's L0_memory_growth method:
baseline at the middle, growth to the end), against a target of 32 MB.

Then the positive control: the same gateway with a deliberate per-request leak
(tests/support/fuzzing/leaky_gateway.py), on the same Triton, under the same mix and the same
measurement, which must flag it; a measurement that passed both could not see a leak.
Appends a section to benchmarks/results.md; the raw samples go to benchmarks/raw/soak.json
(ignored by git).

    .venv/bin/python benchmarks/soak.py --minutes 10 --control-minutes 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.fuzzing.leaky_gateway import LEAK_ENV  # noqa: E402
from support.fuzzing.memory import MB, triton_grpc_url  # noqa: E402
from support.fuzzing.seeds import make_seeds  # noqa: E402
from support.fuzzing.soak import Soak, SoakReport  # noqa: E402
from support.gateway import RunningGateway, start_gateway  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the real soak")
    p.add_argument("--control-minutes", type=float, help="length of the control (default: same)")
    p.add_argument("--concurrency", type=int, default=4, help="callers at once")
    p.add_argument("--threshold-mb", type=float, default=32.0, help="allowed second-half growth")
    p.add_argument("--leak-kib", type=int, default=256, help="the control's leak per request")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "raw" / "soak.json")
    p.add_argument("--no-results", action="store_true", help="do not append to results.md")
    return p.parse_args(argv)


async def soak(running: RunningGateway, minutes: float, args: argparse.Namespace) -> dict[str, Any]:
    seeds, _ = make_seeds()
    report: SoakReport = await Soak(running.target, running.http_url, seeds, seed=1).run(
        running.process.pid, duration_s=minutes * 60, concurrency=args.concurrency
    )
    growth = report.growth(by="time")
    assert report.sampler is not None
    workers = [s.workers for s in report.sampler.samples]
    ops: dict[str, dict[str, int]] = {}
    for (op, outcome), n in sorted(report.ops.items()):
        ops.setdefault(op, {})[outcome] = n
    return {
        "minutes": minutes,
        "requests": report.done,
        "requests_per_s": round(report.done / report.seconds, 1),
        "operations": ops,
        "unexpected_outcomes": report.unexpected(),
        "unexpected_details": {k: report.details.get(k, "") for k in report.unexpected()},
        "rss": growth.as_mb(),
        "decode_workers_end_mb": round(workers[-1] / MB, 1),
        "flagged": growth.leaks(int(args.threshold_mb * MB)),
        "series": [(round(s.t, 1), s.progress, s.gateway) for s in report.sampler.samples],
    }


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _row(name: str, r: dict[str, Any]) -> str:
    rss = r["rss"]
    return (
        f"| {name} | {r['minutes']:g} | {r['requests']} | {r['requests_per_s']} | "
        f"{rss['start_mb']} | {rss['middle_mb']} | {rss['end_mb']} | {rss['peak_mb']} | "
        f"{rss['second_half_growth_mb']} | {'yes' if r['flagged'] else 'no'} |"
    )


def append_results(report: dict[str, Any], command: str) -> None:
    real, control = report["real"], report["control"]
    lines = [
        "",
        f"### soak — {time.strftime('%Y-%m-%d')} — {machine()}, CPU Triton (python backend), "
        "model `tones`; client, gateway and Triton share the machine",
        "",
        f"`{command}` — {report['concurrency']} callers looping over a mix of whole streams "
        "(1-2 s), streams cancelled after their first window, gRPC Classify and HTTP classify "
        "of WAV/FLAC/OGG files and Classify calls given up after 5 ms. Gateway RSS sampled "
        "every 0.5 s; growth = median RSS over the last 10 % of the run minus the median "
        "around its middle (L0_memory_growth's second half); flagged above "
        f"{report['threshold_mb']:g} MB. Control: the same gateway keeping a reference and "
        f"{report['leak_kib']} KiB per request (tests/support/fuzzing/leaky_gateway.py), on "
        "the same Triton.",
        "",
        "| run | minutes | requests | req/s | RSS start MB | middle MB | end MB | peak MB | "
        "second-half growth MB | flagged |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        _row("gateway", real),
        _row("leaking control", control),
        "",
        f"Unexpected outcomes: gateway {real['unexpected_outcomes'] or 'none'}; control "
        f"{control['unexpected_outcomes'] or 'none'}.",
        *(
            f"- gateway {outcome}, first message: {detail!r}"
            for outcome, detail in real["unexpected_details"].items()
        ),
    ]
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/soak.py " + shlex.join(argv or sys.argv[1:])
    control_minutes = args.control_minutes or args.minutes
    with start_gateway() as real:
        print(f"soaking the gateway for {args.minutes:g} min", flush=True)
        real_report = asyncio.run(soak(real, args.minutes, args))
        print(json.dumps({k: v for k, v in real_report.items() if k != "series"}), flush=True)
        with start_gateway(
            "--triton-url",
            triton_grpc_url(real.process.pid),
            module="support.fuzzing.leaky_gateway",
            env={LEAK_ENV: str(args.leak_kib * 1024)},
        ) as leaky:
            print(f"soaking the leaking control for {control_minutes:g} min", flush=True)
            control_report = asyncio.run(soak(leaky, control_minutes, args))
            print(json.dumps({k: v for k, v in control_report.items() if k != "series"}))
    report = {
        "command": command.strip(),
        "concurrency": args.concurrency,
        "threshold_mb": args.threshold_mb,
        "leak_kib": args.leak_kib,
        "real": real_report,
        "control": control_report,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    if not args.no_results:
        append_results(report, command.strip())
    ok = not real_report["flagged"] and control_report["flagged"]
    print("measurement passes the gateway and flags the control" if ok else "UNEXPECTED RESULT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
