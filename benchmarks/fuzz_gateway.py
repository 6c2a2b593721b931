"""Fuzz a real gateway (and the real local Triton behind it) with mutated inputs.

Starts ``python -m tritone_server`` on free loopback ports, then sends N inputs of every kind
(tests/support/fuzzing/cases.py): mutated encoded files of every container over gRPC and
HTTP, raw PCM with odd formats, stream configs at edge values and odd chunk sequences. OK,
INVALID_ARGUMENT and RESOURCE_EXHAUSTED are acceptable (NOT_FOUND for an unknown model);
anything else is a finding: another status, a hang past the deadline, a crash, UNAVAILABLE
while Triton is alive. The gateway's RSS is sampled throughout. Appends a section to
benchmarks/results.md with the command that produced it; the raw JSON (every finding, the
slowest inputs, the RSS series) goes to benchmarks/raw/fuzz_gateway.json (ignored by git).

    .venv/bin/python benchmarks/fuzz_gateway.py --inputs 10000

Every case is reproducible from (--seed, index): ``--only 1234`` sends just that one.
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

from support.fuzzing.cases import FuzzConfig, make_case  # noqa: E402
from support.fuzzing.memory import MB, RssSampler  # noqa: E402
from support.fuzzing.runner import Gateway, Result, Runner, Tally  # noqa: E402
from support.fuzzing.seeds import make_seeds  # noqa: E402
from support.gateway import start_gateway  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--inputs", type=int, default=10_000, help="number of fuzz inputs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=4, help="inputs in flight at once")
    p.add_argument(
        "--deadline-s",
        type=float,
        default=30.0,
        help="per input, past it is a hang; a stream: this long without progress (4x in all)",
    )
    p.add_argument("--huge-chunk-mb", type=float, default=16.0, help="size of the huge chunk")
    p.add_argument("--huge-chunk-share", type=float, default=0.006, help="share of chunk sequences")
    p.add_argument("--only", type=int, nargs="*", help="send only these case indices")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "raw" / "fuzz_gateway.json")
    p.add_argument("--no-results", action="store_true", help="do not append to results.md")
    return p.parse_args(argv)


def finding_json(r: Result) -> dict[str, Any]:
    return {
        "index": r.case.index,
        "kind": r.case.kind,
        "route": r.case.route,
        "input": r.case.detail,
        "bytes": r.case.size(),
        "status": r.status,
        "why": r.finding,
        "message": r.message[:300],
        "seconds": round(r.seconds, 2),
    }


async def fuzz(args: argparse.Namespace, gateway: Gateway) -> dict[str, Any]:
    seeds, unwritable = make_seeds()
    cfg = FuzzConfig(
        huge_chunk_bytes=int(args.huge_chunk_mb * MB), huge_chunk_share=args.huge_chunk_share
    )
    indices = args.only if args.only else range(args.inputs)
    cases = (make_case(args.seed, i, seeds, cfg) for i in indices)
    tally = Tally(deadline_s=args.deadline_s)

    def progress(result: Result) -> None:
        tally.add(result)
        if result.finding:
            print(
                f"FINDING #{result.case.index} {result.status}: {result.case.detail}: "
                f"{result.finding}: {result.message[:200]}",
                flush=True,
            )
        if tally.done % 500 == 0:
            rate = tally.done / (time.monotonic() - tally.started)
            print(f"{tally.done} inputs, {rate:.1f}/s, {tally.by_status()}", flush=True)

    async with (
        RssSampler(gateway.pid, interval_s=0.5) as sampler,
        Runner(gateway, deadline_s=args.deadline_s) as runner,
    ):
        await runner.run_all(cases, concurrency=args.concurrency, on_result=progress)
        elapsed = time.monotonic() - tally.started
        healthy = (
            await runner.healthy_request(next(s for s in seeds if s.container == "wav").data)
            if gateway.alive()
            else "gateway gone"
        )
    gw = [s.gateway for s in sampler.samples]
    workers = [s.workers for s in sampler.samples]
    return {
        "inputs": tally.done,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "deadline_s": args.deadline_s,
        "huge_chunk_bytes": cfg.huge_chunk_bytes,
        "seconds": round(elapsed, 1),
        "inputs_per_s": round(tally.done / elapsed, 1),
        "slowest_input_s": round(tally.slowest, 2),
        "over_deadline_not_hung": tally.over_deadline,
        "slowest_inputs": [
            {"seconds": t, "index": i, "input": detail, "status": status}
            for t, i, detail, status in tally.slow
        ],
        "by_status": tally.by_status(),
        "by_kind": tally.by_kind(),
        "findings": [finding_json(r) for r in tally.findings],
        "healthy_request_after": healthy,
        "containers": sorted({s.container for s in seeds}),
        "containers_unwritable": unwritable,
        "rss_mb": {
            "gateway_start": round(gw[0] / MB, 1),
            "gateway_peak": round(max(gw) / MB, 1),
            "gateway_end": round(gw[-1] / MB, 1),
            "decode_workers_peak": round(max(workers) / MB, 1),
            "decode_workers_end": round(workers[-1] / MB, 1),
        },
        "rss_series": [(round(s.t, 1), s.gateway) for s in sampler.samples],
    }


def group_findings(findings: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[int]]:
    """Findings by kind, sequence or container, model and status: one line each in the
    results, the inputs themselves in the JSON."""
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    for f in findings:
        words = f["input"].split()
        model = next((w[6:] for w in words if w.startswith("model=")), "")
        if not model and words[0].endswith(":"):  # unary cases start "model: seed ..."
            model, words = words[0][:-1], words[1:]
        what = words[0].split("(")[0] if words else "?"
        groups.setdefault((f["kind"], what, model or "-", f["status"]), []).append(f["index"])
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def append_results(report: dict[str, Any], command: str) -> None:
    rss = report["rss_mb"]
    status_counts = ", ".join(f"{k} {v}" for k, v in report["by_status"].items())
    lines = [
        "",
        f"### fuzz_gateway — {time.strftime('%Y-%m-%d')} — {machine()}, CPU Triton (python "
        "backend); client, gateway and Triton share the machine",
        "",
        f"`{command}` — {report['inputs']} inputs (seed {report['seed']}, "
        f"{report['concurrency']} in flight, {report['deadline_s']:g} s deadline each, huge "
        f"chunk {report['huge_chunk_bytes'] // MB} MiB); containers: "
        f"{', '.join(report['containers'])}"
        + (
            f"; not writable here: {', '.join(report['containers_unwritable'])}"
            if report["containers_unwritable"]
            else ""
        )
        + ".",
        "",
        f"- outcomes: {status_counts}",
        f"- findings: {len(report['findings'])}; normal request afterwards: "
        f"{report['healthy_request_after']}",
        f"- {report['inputs_per_s']} inputs/s over {report['seconds']} s; slowest input "
        f"{report['slowest_input_s']} s; {report['over_deadline_not_hung']} inputs took longer "
        f"than {report['deadline_s']:g} s while making progress (a stream is hung only after "
        f"{report['deadline_s']:g} s with nothing read or answered)",
        f"- gateway RSS start {rss['gateway_start']} MB, peak {rss['gateway_peak']} MB, end "
        f"{rss['gateway_end']} MB; decode workers together peak {rss['decode_workers_peak']} "
        f"MB, end {rss['decode_workers_end']} MB",
        "",
        "| kind | " + " | ".join(sorted(report["by_status"])) + " |",
        "| --- | " + " | ".join("---:" for _ in report["by_status"]) + " |",
    ]
    for kind, counts in report["by_kind"].items():
        cells = " | ".join(str(counts.get(s, 0)) for s in sorted(report["by_status"]))
        lines.append(f"| {kind} | {cells} |")
    if report["findings"]:
        lines += ["", "Findings, grouped (kind, what, model → status: count; first inputs):", ""]
        for (kind, what, model, status), indices in group_findings(report["findings"]).items():
            shown = ", ".join(f"#{i}" for i in indices[:5])
            lines.append(f"- {kind}, {what}, {model} → {status}: {len(indices)} ({shown})")
    with RESULTS.open("a") as out:
        out.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/fuzz_gateway.py " + shlex.join(argv or sys.argv[1:])
    with start_gateway() as running:
        gateway = Gateway(
            running.target,
            running.http_url,
            running.process.pid,
            lambda: running.process.poll() is None,
        )
        report = asyncio.run(fuzz(args, gateway))
    report["command"] = command
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "findings"}, indent=2))
    print(f"{len(report['findings'])} findings; details in {args.json}")
    if not args.no_results and not args.only:
        append_results(report, command.strip())
    return 1 if report["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
