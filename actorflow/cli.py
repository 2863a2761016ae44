"""The `actorflow` command: run, resume, validate, visualize, serve and bench agentflow.toml systems.

The only module that configures logging or prints. Exit status: 0 ok (an interrupted dispatch
too: it waits for `actorflow resume`), 1 the dispatch (or the runtime) failed, 2 a usage or
configuration error (a journal that cannot be opened included).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from actorflow.config import AgentFlowConfig, load_config
from actorflow.events import DispatchResult, Event, describe_error
from actorflow.exceptions import (
    ActorflowError,
    ConfigError,
    DispatchNotFoundError,
    DispatchNotResumableError,
    JournalError,
)
from actorflow.patterns import mode_spec

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

ORCHESTRATION_FLAGS = {
    "orchestration_mode": "mode",
    "collaborative_agents": "collaborative_agents",
    "sequential_agents": "sequential_agents",
    "loop_agent": "loop_agent",
    "max_iterations": "max_iterations",
    "orchestration_timeout": "timeout_seconds",
    "failure_threshold": "failure_threshold",
    "max_concurrency": "max_concurrency",
}


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit 2."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return cmd_bench(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, UsageError, JournalError) as err:
        print(f"actorflow: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ActorflowError as err:
        print(f"actorflow: {describe_error(err)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("actorflow: interrupted", file=sys.stderr)
        return 130


# -- commands ------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config = _with_runtime(_load(args), address=args.address, journal=args.journal)
    check_handlers(config)
    event = Event(_target(args.target, config), _data(args), _meta(args.meta), id=args.event_id)
    if args.visualize:
        _visualize(config, _visualize_dir(args), quiet=args.json)

    from actorflow.runtime.runner import Runner  # Ray is imported only for commands that need it

    logging.getLogger().setLevel(config.runtime.log_level.upper())
    runner = Runner(config)
    try:
        runner.start(log_to_driver=not args.json)
        if args.stream or _live(args):
            result, error = _watch(runner, event, args), None
        else:
            try:
                result = runner.dispatch(event)
                error: ActorflowError | None = None
            except ActorflowError as err:
                result, error = err.result, err
    finally:
        runner.stop()

    if args.visualize and result is not None:
        _visualize_run(result, _visualize_dir(args), quiet=args.json)
    if args.stream and result is not None and not result.ok:
        print(f"actorflow: dispatch failed: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    if args.stream:
        return EXIT_OK
    if result is not None and result.interrupted:
        print(json.dumps(result.to_dict(), default=str) if args.json else summary(result))
        print(f"actorflow: {_resume_hint(result, args, config)}", file=sys.stderr)
        return EXIT_OK
    if error is None and result is not None and not result.ok:  # watched live: the failure is in the result
        print(summary(result))
        print(f"actorflow: dispatch failed: {result.error}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        if result is not None:
            print(json.dumps(result.to_dict(), default=str))
    elif result is not None:
        print(summary(result))
    if error is not None:
        print(f"actorflow: dispatch failed: {describe_error(error)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume one interrupted dispatch (`--event-id`, `--data`), or finish every unfinished one."""
    config = _with_runtime(_load(args), address=args.address, journal=args.journal, check=False)
    if not config.runtime.journal:
        raise UsageError("resume needs a journal: give --journal URL or set [runtime] journal in the file")
    if (args.data or args.data_file) and not args.event_id:
        raise UsageError("--data answers one interrupt: give the --event-id of the interrupted dispatch too")
    data = _data(args) if args.data or args.data_file else None
    todo = _unfinished(config.runtime.journal, args.event_id, data is not None)  # before Ray starts
    if not todo:
        print(f"actorflow: the journal {_shown(config.runtime.journal)} holds no unfinished dispatch", file=sys.stderr)
        return EXIT_OK
    check_handlers(config)

    from actorflow.runtime.runner import Runner

    logging.getLogger().setLevel(config.runtime.log_level.upper())
    runner = Runner(config)
    outcomes: list[tuple[str, DispatchResult | None, ActorflowError | None]] = []
    try:
        runner.start(log_to_driver=not args.json)  # takes over the dispatches whose runner died
        for event_id, status in todo:
            if status == "running":  # its runner died (start() takes it over) or still runs: wait
                outcomes.append((event_id, *_outcome(runner.wait, event_id)))
            elif args.event_id:
                outcomes.append((event_id, *_outcome(runner.resume, event_id, data)))
            else:  # an interrupt waits for a person's answer: listed, not rerun
                outcomes.append((event_id, runner.result(event_id), None))
    finally:
        runner.stop()

    failed = False
    for event_id, result, error in outcomes:
        if result is not None:
            print(json.dumps(result.to_dict(), default=str) if args.json else summary(result), flush=True)
            if result.interrupted:
                print(f"actorflow: {_resume_hint(result, args, config)}", file=sys.stderr)
        if error is not None or (result is not None and not result.ok and not result.interrupted):
            failed = True
            why = describe_error(error) if error is not None else result.error
            print(f"actorflow: dispatch {event_id} failed: {why}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _unfinished(url: str, event_id: str | None, answering: bool) -> list[tuple[str, str]]:
    """(event id, status) of what `resume` is to do, read from the journal before any runner
    takes a dispatch over. An unknown, finished (or, with --data, running) id is an error."""
    from actorflow.journal import open_journal

    journal = open_journal(url)
    try:
        if event_id is None:
            return [(record.event_id, record.status) for record in journal.unfinished()]
        record = journal.load(event_id)
    finally:
        journal.close()
    if record is None:
        raise DispatchNotFoundError(f"the journal {_shown(url)} has no dispatch {event_id!r}", event_id=event_id)
    if record.status == "finished" or (answering and record.status == "running"):
        raise DispatchNotResumableError(
            f"dispatch {event_id!r} cannot be resumed: it is {record.status} (only an interrupted dispatch can)",
            event_id=event_id, status=record.status,
        )
    return [(event_id, record.status)]


def _outcome(call: Any, *args: Any) -> tuple[DispatchResult | None, ActorflowError | None]:
    """(result, None) or, when the dispatch failed, (its partial result, the error)."""
    try:
        return call(*args), None
    except ActorflowError as err:
        return err.result, err


def _resume_hint(result: DispatchResult, args: argparse.Namespace, config: AgentFlowConfig) -> str:
    interrupt = result.interrupt or {}
    what = f"dispatch {result.event_id} is interrupted by agent {interrupt.get('agent')}: {interrupt.get('reason')}"
    if not config.runtime.journal:
        return f"{what} (no journal: it cannot be resumed once this process exits; use --journal URL)"
    return (f"{what}; answer it with: actorflow resume {args.config} --journal '{_shown(config.runtime.journal)}' "
            f"--event-id {result.event_id} --data '{{...}}'")


def _with_runtime(
    config: AgentFlowConfig, *, address: str | None, journal: str | None, check: bool = True
) -> AgentFlowConfig:
    """`--address` and `--journal` over `[runtime]`. With `check`, the journal is opened here
    once, so a bad one is a set-up error (exit 2) before Ray starts."""
    updates = {key: value for key, value in (("address", address), ("journal", journal)) if value}
    if updates:
        config = config.model_copy(update={"runtime": config.runtime.model_copy(update=updates)})
    url = config.runtime.journal
    if url and check:
        from actorflow.journal import open_journal

        open_journal(url).close()
    return config


def _shown(url: str) -> str:
    from actorflow.journal import redact_url

    return redact_url(url)


def cmd_validate(args: argparse.Namespace) -> int:
    config = _load(args)
    check_handlers(config)
    print(describe_config(config))
    return EXIT_OK


def cmd_visualize(args: argparse.Namespace) -> int:
    config = _load(args)
    _visualize(config, Path(args.output), quiet=False)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from actorflow.serve.flows import flow_name, load_flows

    config, *more = load_flows(args.config, env=args.env)  # several files or a directory: several flows
    if args.api_key_env:
        config = config.model_copy(update={"serve": config.serve.model_copy(update={"api_key_env": args.api_key_env})})
    if args.journal and more:
        raise UsageError("--journal serves one flow: with several, set [runtime] journal in each flow's file")
    config = _with_runtime(config, address=None, journal=args.journal)
    for flow in (config, *more):
        check_handlers(flow)
    from actorflow.serve import serving, wait_for_shutdown_signal  # imports Ray Serve

    logging.getLogger().setLevel(config.runtime.log_level.upper())
    with serving(config, host=args.host, port=args.port, flows=more) as url:
        print(f"actorflow: serving {config.source} ({config.orchestration.mode} mode) at {url}", flush=True)
        print(f"  POST {url}/v1/dispatch   GET {url}/v1/agents  {url}/v1/health  {url}/metrics  {url}/docs", flush=True)
        if config.runtime.journal:
            print(f"  journal {_shown(config.runtime.journal)}: GET {url}/v1/dispatches/ID  "
                  f"POST {url}/v1/dispatches/ID/resume", flush=True)
        for flow in (config, *more) if more else ():
            print(f"  POST {url}/v1/flows/{flow_name(flow)}/dispatch   ({flow.source})", flush=True)
        name = wait_for_shutdown_signal()
        print(f"actorflow: {name}: draining requests in flight, then stopping", file=sys.stderr, flush=True)
    print("actorflow: stopped", file=sys.stderr)
    return EXIT_OK


def cmd_bench(argv: list[str]) -> int:
    from benchmarks.cli import main as run_benchmarks  # only this command imports the benchmarks

    return run_benchmarks(argv)


def _live(args: argparse.Namespace) -> bool:
    """Plain `run` on a terminal shows live progress; piped output gets the summary only."""
    return not args.json and sys.stdout.isatty()


def _watch(runner: Any, event: Event, args: argparse.Namespace) -> DispatchResult | None:
    from actorflow import progress

    if args.stream:
        return progress.print_updates(runner.stream(event), sys.stdout, json_lines=args.json)
    return progress.show_live(runner.stream(event))


def _visualize_dir(args: argparse.Namespace) -> Path:
    """`--visualize DIR`, or the older `--visualize --visualize-output DIR`."""
    return Path(args.visualize if isinstance(args.visualize, str) else args.visualize_output)


def _visualize_run(result: DispatchResult, out_dir: Path, *, quiet: bool) -> None:
    """The run diagrams next to the config diagram: what actually ran."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("flowchart", "gantt"):
        path = out_dir / f"run-{result.event_id}-{kind}.mmd"
        path.write_text(result.to_mermaid(kind), encoding="utf-8")
        if not quiet:
            print(f"wrote {path}", file=sys.stderr)


def _visualize(config: AgentFlowConfig, out_dir: Path, *, quiet: bool) -> None:
    from actorflow import mermaid

    path = mermaid.write(config, out_dir)
    if not quiet:
        print(mermaid.render(config))
        print(f"wrote {path}", file=sys.stderr)


# -- helpers -------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> AgentFlowConfig:
    overrides = {key: getattr(args, flag, None) for flag, key in ORCHESTRATION_FLAGS.items()}
    return load_config(args.config, env=args.env, overrides=overrides)


def check_handlers(config: AgentFlowConfig) -> None:
    """Every agent the orchestration reaches needs `handler = "module:attr"` that imports, or
    must be an LLM agent (a section with no handler, under a configured `[llm]` provider)."""
    from actorflow.runtime.handlers import import_handler

    orchestration = config.orchestration
    needed = orchestration.named_agents() or [n for n, a in config.agents.items() if a.enabled]
    if not needed:
        raise ConfigError(f"{config.source or 'the configuration'} defines no agents to run")
    llm = config.llm_agents()
    flows = config.flows
    missing = [name for name in needed if not config.agent(name).handler and name not in llm and name not in flows]
    if missing:
        raise ConfigError(
            f"{config.source or 'the configuration'}: no handler for agent(s) {', '.join(missing)}; "
            f'the CLI registers nothing in code, so give each [agents.NAME] section a handler = "package.module:attribute", '
            f'or make it an LLM agent: an [agents.NAME] section with a system_prompt under an [llm] provider and model'
        )
    for name in needed:
        if name in flows:
            check_handlers(flows[name])
        elif name not in llm:
            import_handler(config.agent(name).handler, agent=name)


def _target(target: str | None, config: AgentFlowConfig) -> str:
    """The --target, else the orchestration's entry agent (route: the first enabled agent)."""
    if target:
        if target not in config.agents:
            known = ", ".join(config.agents) or "(none)"
            raise UsageError(f"--target {target!r} is not an agent of this configuration; its agents: {known}")
        return target
    entry = mode_spec(config.orchestration.mode).entry(config.orchestration, config.enabled_agents())
    if entry is None:
        raise UsageError("no --target given and the configuration has no enabled agent to default to")
    return entry


def _data(args: argparse.Namespace) -> dict[str, Any]:
    if args.data and args.data_file:
        raise UsageError("give --data or --data-file, not both")
    text, where = (args.data, "--data") if args.data else (None, None)
    if args.data_file:
        try:
            text, where = Path(args.data_file).read_text(), args.data_file
        except OSError as err:
            raise UsageError(f"cannot read --data-file {args.data_file}: {err.strerror}") from None
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{where} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where} must be a JSON object, got {type(data).__name__}")
    return data


def _meta(pairs: list[str]) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--meta takes key=value, got {pair!r}")
        meta[key] = value
    return meta


def summary(result: DispatchResult) -> str:
    """A readable account of a dispatch: each agent run, then the final state."""
    outcome = "INTERRUPTED" if result.interrupted else "ok" if result.ok else "FAILED"
    lines = [
        f"{outcome}: {result.mode} dispatch of event {result.event_id} "
        f"in {result.duration * 1000:.1f} ms",
        f"  {'agent':<20} {'status':<13} {'ms':>9}  attempt  detail",
    ]
    for run in result.runs:
        detail = []
        if run.phase:
            detail.append(f"phase={run.phase}")
        if run.iteration is not None:
            detail.append(f"iteration={run.iteration}")
        if run.error:
            detail.append(run.error)
        lines.append(f"  {run.agent:<20} {run.status:<13} {run.duration * 1000:>9.1f}  {run.attempt:>7}  {' '.join(detail)}")
    if result.iterations is not None:
        lines.append(f"iterations: {result.iterations} ({result.completion_reason})")
    if result.failed_agents:
        lines.append(f"failed agents: {', '.join(result.failed_agents)}")
    if result.interrupted and result.interrupt:
        i = result.interrupt
        lines.append(f"interrupted by {i.get('agent')}: {i.get('reason')}; payload: {json.dumps(i.get('payload'), default=str)}")
    lines.append("final state:")
    lines.append(json.dumps(result.state.to_dict(), indent=2, default=str, sort_keys=True))
    return "\n".join(lines)


def describe_config(config: AgentFlowConfig) -> str:
    o = config.orchestration
    wiring = mode_spec(o.mode).describe(o, config.enabled_agents())
    lines = [
        f"{config.source or 'configuration'}: valid",
        f"  flow:     {config.agent_flow.name} {config.agent_flow.version}",
        f"  mode:     {o.mode} (timeout {o.timeout_seconds}s, failure_threshold {o.failure_threshold}, "
        f"max_concurrency {o.max_concurrency}, retries {o.max_retries})",
        f"  wiring:   {wiring}",
        "  agents:",
    ]
    llm = config.llm_agents()
    for name, agent in config.agents.items():
        state = "enabled" if agent.enabled else "disabled"
        if name in llm:
            s = llm[name]
            kind = f"llm={s.provider}/{s.model} at {s.display_url} -> data[{s.output_key!r}]"
            if s.api_key_env:
                kind += f", key from ${s.api_key_env}{'' if os.environ.get(s.api_key_env) else ' (NOT SET)'}"
        else:
            kind = f"handler={agent.handler or '(none)'}"
        lines.append(f"    {name:<18} {agent.role or '-':<20} {state:<8} {kind}")
    if llm:
        lines.append(f"  llm agents: {', '.join(llm)} (no handler: they call the chat API of their provider)")
    lines.extend(f"  warning:  {w}" for w in config.warnings)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actorflow", description="Actor-model multi-agent orchestration on Ray.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("config", help="path to an agentflow.toml")
        p.add_argument("--env", help="environment layer: configs/environments/ENV.toml (default: $ACTORFLOW_ENV)")
        p.add_argument("--orchestration-mode", choices=["route", "collaborative", "collaborate", "sequential", "loop", "mixed"])
        p.add_argument("--collaborative-agents", metavar="A,B", help="comma-separated agent names")
        p.add_argument("--sequential-agents", metavar="A,B", help="comma-separated agent names")
        p.add_argument("--loop-agent", metavar="A")
        p.add_argument("--max-iterations", type=int, metavar="N")
        p.add_argument("--orchestration-timeout", type=float, metavar="S", help="whole-dispatch deadline in seconds")
        p.add_argument("--failure-threshold", type=float, metavar="F", help="0.0-1.0")
        p.add_argument("--max-concurrency", type=int, metavar="N")

    run = sub.add_parser("run", help="dispatch one event through the configured orchestration")
    with_config(run)
    run.add_argument("--target", help="the event's target agent (default: the orchestration's entry agent)")
    run.add_argument("--data", help="event data as a JSON object")
    run.add_argument("--data-file", help="file holding the event data as a JSON object")
    run.add_argument("--meta", action="append", default=[], metavar="K=V", help="event metadata (repeatable)")
    run.add_argument("--address", help="Ray cluster address to join (default: embedded local Ray)")
    run.add_argument("--journal", metavar="URL", help="record the dispatch in this journal: sqlite:///path.db or "
                     "postgresql://user@host/db (default: [runtime] journal)")
    run.add_argument("--event-id", metavar="ID", help="the event's id (default: a new UUID); with a journal, an id "
                     "that already finished returns its recorded result and runs nothing")
    run.add_argument("--json", action="store_true", help="print only the DispatchResult JSON on stdout")
    run.add_argument("--stream", action="store_true",
                     help="print each update (agent started/finished, tokens) as a line while it runs (--json: JSON lines)")
    run.add_argument("--visualize", nargs="?", const=True, default=None, metavar="DIR",
                     help="write the flow's diagram and the run's flowchart and gantt diagrams to DIR "
                     "(default: --visualize-output)")
    run.add_argument("--visualize-output", default="diagrams", metavar="DIR")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="resume an interrupted dispatch (--event-id, --data), or finish every "
                            "unfinished dispatch of a journal")
    with_config(resume)
    resume.add_argument("--journal", metavar="URL", help="the journal (default: [runtime] journal)")
    resume.add_argument("--event-id", metavar="ID", help="the interrupted dispatch to resume (default: every "
                        "unfinished one: running ones are finished, interrupted ones listed)")
    resume.add_argument("--data", help="the answer to the interrupt, a JSON object merged into the agent's input data")
    resume.add_argument("--data-file", help="file holding --data")
    resume.add_argument("--address", help="Ray cluster address to join (default: embedded local Ray)")
    resume.add_argument("--json", action="store_true", help="print only each DispatchResult as a JSON line on stdout")
    resume.set_defaults(func=cmd_resume)

    validate = sub.add_parser("validate", help="check a configuration and its handlers without running anything")
    with_config(validate)
    validate.set_defaults(func=cmd_validate)

    visualize = sub.add_parser("visualize", help="write a Mermaid diagram of the configured orchestration")
    with_config(visualize)
    visualize.add_argument("--output", default="diagrams", metavar="DIR")
    visualize.set_defaults(func=cmd_visualize)

    serve_cmd = sub.add_parser("serve", help="serve the orchestration over HTTP with Ray Serve until SIGINT/SIGTERM")
    serve_cmd.add_argument("config", nargs="+", help="agentflow.toml file(s) or a directory of them (one flow each)")
    serve_cmd.add_argument("--env", help="environment layer: configs/environments/ENV.toml (default: $ACTORFLOW_ENV)")
    serve_cmd.add_argument("--host", help="interface to bind (default: [serve] host, 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="HTTP port (default: [serve] port, 8000)")
    serve_cmd.add_argument(
        "--api-key-env", metavar="VAR", help="require 'Authorization: Bearer $VAR' (default: [serve] api_key_env)"
    )
    serve_cmd.add_argument("--journal", metavar="URL", help="record dispatches in this journal and serve "
                           "/v1/dispatches/ID (default: [runtime] journal)")
    serve_cmd.set_defaults(func=cmd_serve)

    # `actorflow bench ARGS` is `python -m benchmarks ARGS` (see main); listed here for --help.
    sub.add_parser("bench", help="benchmark the five patterns against raw Ray, LangGraph and the ideal "
                   "(options: actorflow bench --help)")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
