"""The ``spamclf`` command line: each command turns options into one library call and prints its result.

Results go to stdout, logs and progress to stderr. Exit status: 0 success, 1 bad input
or data or an output that could not be written, 2 usage error (Click), 3 a models directory
that cannot be used or an input that could not be read. A reader of stdout that goes away
(``| head -1``) ends a command normally.
"""

from __future__ import annotations

import functools
import json
import os
import sys

# Set before NumPy loads OpenBLAS: scoring's small dense products gain nothing from BLAS threads,
# which spin on the cores the extraction workers need.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Read when NumPy loads: it asks the kernel for huge pages for every large array, and faulting them
# in stalled saving a trained bundle (the first kernel's copies) for most of a second, in bursts.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import click  # noqa: E402

from . import __version__  # noqa: E402
from .printable import printable  # noqa: E402
from .errors import OutputError, SpamclfError, UsageError  # noqa: E402
from .serving.server import DEFAULT_HOST, DEFAULT_PORT, LOG_FORMATS, ServeOptions  # noqa: E402
from .writing import OutputClosed, write_stream  # noqa: E402

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class SpamclfGroup(click.Group):
    """Turns library errors into one line on stderr and their exit status, never a traceback."""

    def parse_args(self, ctx, args):
        ctx.meta["spamclf.argv"] = list(args)  # the command line as given, for a usage error in filter mode
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        # Text that the locale cannot encode is escaped, as on stderr, not a crash (PYTHONIOENCODING=latin-1).
        reconfigure_stdout(errors="backslashreplace")
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if not filter_usage_error(ctx, exc.format_message()):
                raise  # Click's usage message and status 2, as for every other command (or no message to pass)
        except OutputClosed:  # stdout's reader went away: a normal end, as for other Unix tools
            release_stdout()
            ctx.exit(0)
        except SpamclfError as exc:
            if isinstance(exc, UsageError):
                filter_usage_error(ctx, str(exc))
            echo_error(str(exc))
            if isinstance(exc, OutputError):
                release_stdout()
            ctx.exit(exc.exit_code)
        except OSError as exc:  # one no layer below named (a bundle's file on a full disk): still one line
            reason = exc.strerror or str(exc)
            echo_error(f"{exc.filename}: {reason}" if exc.filename else reason)
            release_stdout()
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def echo_error(text: str) -> None:
    """``Error: text`` on stderr, one line whatever names it quotes (a file name may hold a newline)."""
    click.echo(f"Error: {printable(text)}", err=True)


def emit(text: str) -> None:
    """A command's result on stdout; a failure to write it is OutputError, a closed pipe OutputClosed."""
    if sys.stdout is not None:
        write_stream(sys.stdout, text + "\n", flush=True)


def reconfigure_stdout(**settings) -> None:
    """``sys.stdout.reconfigure(**settings)`` where stdout is a text stream that can be reconfigured."""
    try:
        sys.stdout.reconfigure(**settings)
    except (AttributeError, ValueError, OSError):
        pass  # no stdout, a replaced one, or one that cannot be flushed: left as it is


def release_stdout() -> None:
    """Flush stdout, or point it at /dev/null when it cannot be written (a closed pipe, a full disk),
    so that the interpreter's own flush at exit cannot add a second message to the one given."""
    try:
        sys.stdout.flush()
        return
    except AttributeError:  # stdout is closed (None)
        return
    except (OSError, ValueError):
        pass
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def filter_usage_error(ctx, problem: str) -> bool:
    """A usage error in a command line meant for filter mode: say ``problem``, pass the message on stdin
    through unchanged and exit 3. Returns False, having done nothing, for any other command line.

    A mail filter whose command line is wrong (a mistyped option, a missing --models) still delivers
    the mail and exits 3, as bogofilter does on an unknown option: 2 would read as "unsure", with no
    message on stdout.
    """
    if not meant_for_filter_mode(ctx.meta.get("spamclf.argv", ())) or sys.stdin is None or sys.stdin.isatty():
        return False
    from .commands.filter import EXIT_ERROR, pass_through

    echo_error(problem)
    problem = pass_through(sys.stdin.buffer, binary(sys.stdout))
    if problem:
        echo_error(problem)
    ctx.exit(EXIT_ERROR)


def binary(stream):
    """The binary buffer of ``sys.stdin`` or ``sys.stdout``; None when the process was started with it closed."""
    return getattr(stream, "buffer", None)


def meant_for_filter_mode(argv) -> bool:
    """Whether a command line that Click refused was meant for filter mode: ``predict`` with the
    input ``-`` and no ``--format`` (with one, ``-`` is a message whose row is wanted)."""
    words = list(argv)
    if words[:1] != ["predict"] or "-" not in words[1:]:
        return False
    return not any(w == "--format" or w.startswith("--format=") for w in words[1:])


def data_option(f, unless: str | None = None):
    """``--data``, ``--spam`` and ``--ham``, handed to the command as one list of sources in ``data``;
    required unless the flag ``unless`` (a parameter of the command) is set."""

    @functools.wraps(f)
    def merged(*args, spam=(), ham=(), **kwargs):
        from .mail.sources import labelled_sources

        if not (kwargs.get("data") or spam or ham or (unless and kwargs.get(unless))):
            also = f" (or --{unless})" if unless else ""
            raise click.UsageError(f"give labelled data: --data SRC, or --spam SRC and --ham SRC{also}")
        kwargs["data"] = labelled_sources(kwargs.get("data") or (), spam, ham)
        return f(*args, **kwargs)

    for name, label in (("--ham", "ham"), ("--spam", "spam")):
        merged = click.option(
            name,
            label,
            multiple=True,
            metavar="SRC",
            help=f"Mail that is all {label}: a message, folder, Maildir, MH, mbox (maybe compressed) or table. Repeatable.",
        )(merged)
    return click.option(
        "--data",
        "data",
        multiple=True,
        metavar="SRC",
        help="Labelled data: a folder with spam/ and ham/ subfolders, a CSV/TSV/JSONL/Parquet table with a "
        "label column, or a file written by 'preprocess'. Repeatable.",
    )(merged)


def config_options(f):
    f = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one config key, e.g. --set train.epochs=3. Repeatable.",
    )(f)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="YAML config file (default: the built-in best settings, as in configs/default.yaml).",
    )(f)


def engine_options(what: str):
    """``--engine local|ray`` and ``--address``, shared by the commands that can run on Ray."""

    def decorate(f):
        f = click.option(
            "--address", default=None, metavar="ADDR", help="Ray: join the cluster at ADDR (default: start a local Ray runtime)."
        )(f)
        return click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help=f"ray: {what} (needs pip install 'spamclf[ray]').",
        )(f)

    return decorate


def jobs_option(f):
    return click.option(
        "--jobs",
        type=click.IntRange(0),
        default=0,
        metavar="N",
        help="Worker processes extracting text when there are more than 256 messages (default 0: one per CPU; 1: none).",
    )(f)


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True, help="No progress output on stderr.")(f)


@click.group(cls=SpamclfGroup, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="spamclf")
def main():
    """spamclf: train a spam filter on your own mail, evaluate it, and classify messages.

    \b
    Example:
      spamclf train --data data/sample --models models/demo
      spamclf evaluate --models models/demo --data data/sample
      spamclf predict --models models/demo ~/Mail/inbox
    """


@main.command(context_settings=CONTEXT)
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for train.jsonl, test.jsonl, stats.json.")
@click.option("--test-size", default=0.2, show_default=True, type=float, help="Fraction of each class held out for testing.")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the split: the same seed gives the same split.")
@config_options
@jobs_option
@quiet_option
def preprocess(data, out, test_size, seed, config_path, overrides, jobs, quiet):
    """Read and extract mail once; write a stratified, seeded train/test split.

    Prints the stats (messages per label, duplicates dropped, messages skipped and why)
    as JSON, and writes them to OUT/stats.json.

    \b
    Example:
      spamclf preprocess --data data/sample --out work/split --test-size 0.2 --seed 1
      spamclf train --data work/split/train.jsonl --models models/demo
    """
    from .config import load_config
    from .mail.extract import ExtractOptions
    from .commands.preprocess import preprocess as run

    options = ExtractOptions.from_config(load_config(config_path, overrides))
    stats = run(list(data), out, test_size=test_size, seed=seed, options=options, progress=not quiet, jobs=jobs)
    skipped = stats.pop("skipped_messages")
    for entry in skipped:
        click.echo(f"skipped {printable(entry['path'])}: {printable(entry['reason'])}", err=True)
    emit(json.dumps(stats, indent=2))


def wait_option(f):
    return click.option(
        "--wait",
        type=click.FloatRange(0.0),
        default=60.0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait while another process changes the models directory; then exit 3.",
    )(f)


@main.command(context_settings=CONTEXT)
@functools.partial(data_option, unless="relearn")
@click.option("--models", "models_dir", required=True, type=click.Path(file_okay=False), help="Models directory to write.")
@config_options
@click.option("--force", is_flag=True, help="Replace an existing models directory (atomically).")
@click.option(
    "--relearn",
    is_flag=True,
    help="Rebuild the model at --models from everything 'learn' stored in it (no --data); atomically, under its lock.",
)
@wait_option
@engine_options("distributed vocabulary and data-parallel training on Ray")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True, metavar="N", help="Ray: data-parallel workers.")
@jobs_option
@quiet_option
@click.pass_context
def train(ctx, data, models_dir, config_path, overrides, force, relearn, wait, engine, workers, address, jobs, quiet):
    """Train a spam filter on labelled mail and save it to a models directory.

    Fits TF-IDF on the training messages, trains the dense network with a validation
    split and early stopping, picks the decision threshold on the validation data, and
    writes the bundle. Prints a JSON summary on stdout.

    With --relearn instead of --data: rebuilds the model at --models from every message
    'spamclf learn' stored there (the vocabulary selected again, the network fitted from
    scratch, with the bundle's own config), replacing it atomically while holding its lock.

    \b
    Example:
      spamclf train --data data/sample --models models/demo --config configs/smoke.yaml
      spamclf train --data data/spamassassin --models models/sa --set train.epochs=8
      spamclf train --data data/spamassassin --models models/sa --engine ray --workers 4
      spamclf train --models ~/.spamclf/models --relearn
    """
    from functools import partial

    if relearn:
        return _relearn(ctx, data, wait)
    if engine == "ray":
        from .ray_engine.train import train_on_ray

        run = partial(train_on_ray, workers=workers, address=address)
    elif address:
        raise click.UsageError("--address needs --engine ray")
    else:
        from .commands.train import train

        run = partial(train, jobs=jobs)

    summary = run(list(data), models_dir, config=config_path, overrides=overrides, force=force, progress=not quiet)
    skipped = summary["data"].pop("skipped_messages")
    for entry in skipped:
        click.echo(f"skipped {printable(entry['path'])}: {printable(entry['reason'])}", err=True)
    summary.pop("history")
    emit(json.dumps(summary, indent=2))


def _relearn(ctx, data, wait) -> None:
    """``train --relearn``: every other option of ``train`` that was given is a usage error."""
    from click.core import ParameterSource

    from .commands.learning import relearn_models

    if data:
        raise UsageError("--relearn rebuilds from what the models directory learned: give no --data, --spam or --ham")
    kept = {"models_dir", "relearn", "wait", "quiet", "data", "spam", "ham"}
    given = [p for p in ctx.command.params if p.name not in kept and ctx.get_parameter_source(p.name) != ParameterSource.DEFAULT]
    if given:
        raise UsageError(f"--relearn uses the models directory's own config and engine: {given[0].opts[-1]} does not apply")
    emit(json.dumps(relearn_models(ctx.params["models_dir"], wait), indent=2))


@main.command(context_settings=CONTEXT)
@click.option("--models", "models_dir", required=True, type=click.Path(), help="Models directory written by 'train'.")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=None, help="Decision threshold (default: the bundle's).")
@click.option(
    "--target-fpr",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=None,
    help="Also print the threshold that keeps the false-positive rate on this data at most this (e.g. 0.001).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write metrics.json, confusion matrix, misclassified messages, PNG plots and report.html here.",
)
@jobs_option
@quiet_option
def evaluate(models_dir, data, as_json, threshold, target_fpr, report_dir, jobs, quiet):
    """Measure a trained filter on labelled mail.

    Reports accuracy, precision, recall, F1, ROC AUC, the false-positive rate (ham marked
    spam) and the confusion matrix. Mail of one class alone works too: a folder of spam gives
    the share caught (recall), a folder of ham the share marked spam; what needs the other
    class is n/a (null in JSON).

    \b
    Example:
      spamclf evaluate --models models/demo --data work/split/test.jsonl
      spamclf evaluate --models models/demo --data data/sample --json
      spamclf evaluate --models models/demo --data test.jsonl --target-fpr 0.001 --report work/report
      spamclf evaluate --models models/demo --spam ~/Mail/junk
    """
    from .commands.evaluate import evaluate as run
    from .commands.evaluate import format_metrics

    result = run(
        models_dir, list(data), threshold=threshold, target_fpr=target_fpr, report_dir=report_dir, progress=not quiet, jobs=jobs
    )
    emit(json.dumps(result) if as_json else format_metrics(result))
    if report_dir and not as_json:
        click.echo(f"report written to {result['report']['html']}", err=True)


def server_options(f):
    """``--server URL`` and ``--timeout S``: the command through a running ``spamclf serve``."""
    from .serving.client import DEFAULT_TIMEOUT

    f = click.option(
        "--timeout",
        type=click.FloatRange(0, min_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        metavar="S",
        help="With --server: seconds to wait for the daemon's whole answer.",
    )(f)
    return click.option("--server", metavar="URL", default=None, help="Go through a running 'spamclf serve' at URL: http://HOST:PORT or unix:PATH.")(f)


@main.command(context_settings=CONTEXT)
@click.option("--models", "models_dir", type=click.Path(), help="Models directory written by 'train' (required, but for --server).")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "jsonl"]), default="table", show_default=True)
@click.option(
    "--threshold",
    "--spam-cutoff",
    "threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Spam cutoff: scores at or above it are spam (default: the bundle's threshold).",
)
@click.option(
    "--ham-cutoff",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Scores below it are ham; between it and the spam cutoff, 'unsure' (default: no unsure band).",
)
@click.option(
    "--explain",
    type=click.IntRange(0),
    default=0,
    metavar="N",
    help="Name the N tokens that pushed each score most towards spam and towards ham.",
)
@click.option("--exit-zero", is_flag=True, help="Filter mode: exit 0 whatever the verdict (3 still means an error).")
@click.option(
    "--header-prefix",
    default="X-Spam",
    show_default=True,
    help="Filter mode: names of the added headers (PREFIX-Flag, PREFIX-Score, PREFIX-Status).",
)
@engine_options("score on a Ray cluster with Ray Data")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Ray: write the rows as Parquet files in this folder (JSON Lines or CSV with --format) and print a summary.",
)
@click.option("--workers", type=click.IntRange(1), default=None, metavar="N", help="Ray: scoring workers (default: one per CPU).")
@jobs_option
@server_options
@click.pass_context
def predict(ctx, models_dir, inputs, fmt, threshold, ham_cutoff, explain, exit_zero, header_prefix, engine, address, out_dir, workers, jobs, server, timeout):
    """Classify messages: files, folders (recursive), Maildir/MH, mbox, compressed files, tables.

    Writes one row per message found, in a stable order: path, spam probability (score)
    and label (spam, ham, or unsure inside the --ham-cutoff band). An unreadable input
    gets a row with an error. Exit status 0 when every input was scored, 3 when any
    could not be read.

    Filter mode, with INPUT '-' alone and no --format: reads one message on stdin and
    writes it to stdout unchanged but for the added X-Spam-Flag, X-Spam-Score and
    X-Spam-Status headers (incoming ones are renamed X-Forged-Spam-*). Exit status as
    bogofilter: 0 spam, 1 ham, 2 unsure, 3 error (the message still passed through).

    With --server URL instead of --models, filter mode goes through a running 'spamclf
    serve': no model is loaded here, and the process starts in milliseconds. If the daemon
    is down, refuses or does not answer within --timeout, the message passes through
    unchanged with exit status 3.

    \b
    Example:
      spamclf predict --models models/demo data/sample/spam
      spamclf predict --models models/demo --format jsonl message.eml
      spamclf predict --models models/demo --explain 5 suspicious.eml
      spamclf predict --models models/demo - < message.eml > filtered.eml
      spamclf predict --server unix:/run/spamclf/spamclf.sock - < message.eml > filtered.eml
      spamclf predict --models models/demo --engine ray --out work/scores ~/archive
    """
    from click.core import ParameterSource

    from .mail.sources import stdin_once

    stdin_once(inputs)  # before the models load: a wrong command line is reported as such, stdin unread
    filter_mode = inputs == ("-",) and ctx.get_parameter_source("fmt") == ParameterSource.DEFAULT
    if server:
        return _predict_through_server(ctx, server, timeout, filter_mode, exit_zero)
    if models_dir is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "models_dir"))
    if sys.stdout is None and not (filter_mode or out_dir):
        raise SpamclfError("stdout is closed: the rows have nowhere to go")
    if engine == "ray":
        return _predict_on_ray(ctx, models_dir, inputs, fmt, threshold, ham_cutoff, explain, address, out_dir, workers)
    if address or out_dir or workers:
        raise click.UsageError("--address, --out and --workers need --engine ray")

    if filter_mode:
        from .commands.filter import FilterOptions, filter_stream

        options = FilterOptions(threshold, ham_cutoff, header_prefix, exit_zero)
        result = filter_stream(models_dir, binary(sys.stdin), binary(sys.stdout), options)
        if result.error:
            echo_error(result.error)
        ctx.exit(result.exit_code)

    from .commands.predict import Classifier
    from .mail.sources import SkipLog

    clf = Classifier.load(models_dir)
    skips = SkipLog()
    rows = clf.predict(inputs, threshold=threshold, skips=skips, explain=explain, ham_cutoff=ham_cutoff, jobs=jobs)
    counts = _write_rows(rows, fmt, explain=bool(explain))
    note = f", {counts['truncated']} cut at {clf.options.max_bytes} bytes (extract.max_bytes)" if counts["truncated"] else ""
    _echo_summary(counts, note, skips)
    if counts["failed"]:
        sys.exit(3)


def _predict_through_server(ctx, server, timeout, filter_mode, exit_zero):
    """``predict --server URL -``: filter mode through the daemon, the fast start's own function."""
    from click.core import ParameterSource

    from .serving.client import filter_stream

    local = [p.opts[0] for p in ctx.command.params if p.name not in ("inputs", "server", "timeout", "exit_zero")
             and ctx.get_parameter_source(p.name) != ParameterSource.DEFAULT]
    if not filter_mode or local:
        given = f": not with {', '.join(local)}" if local else ""
        raise click.UsageError(f"--server is filter mode through the daemon: give it the input '-' alone{given}")
    code, error = filter_stream(server, binary(sys.stdin), binary(sys.stdout), timeout, exit_zero)
    if error:
        echo_error(error)
    ctx.exit(code)


def _write_rows(rows, fmt: str, explain: bool = False) -> dict:
    """The rows on stdout, CSV and JSON Lines in UTF-8 whatever the locale. A reader that goes
    away (``| head -1``) stops the scoring: the command then ends as it would have at the end."""
    from .commands.predict import write_predictions

    if fmt != "table":
        reconfigure_stdout(encoding="utf-8")
    counts = write_predictions(rows, fmt, sys.stdout, explain=explain)
    if counts["closed"]:
        release_stdout()
    return counts


def _echo_summary(counts: dict, note: str, skips) -> None:
    """``N scored, M failed`` and what else there is to say, on stderr."""
    note += f", {skips.summary()}" if skips.skipped else ""
    note += ", stopped when the output was closed" if counts.get("closed") else ""
    click.echo(f"{counts['scored']} scored, {counts['failed']} failed{note}", err=True)


def _predict_on_ray(ctx, models_dir, inputs, fmt, threshold, ham_cutoff, explain, address, out_dir, workers):
    """``predict --engine ray``: rows to stdout as locally, or files in --out and a JSON summary."""
    from .ray_engine import scoring as ray_scoring
    from .mail.sources import SkipLog

    if explain:
        raise click.UsageError("--explain is not available with --engine ray")
    skips = SkipLog()
    options = dict(threshold=threshold, ham_cutoff=ham_cutoff, workers=workers, address=address, skips=skips)
    if out_dir:
        out_format = {"jsonl": "jsonl", "csv": "csv"}.get(fmt, "parquet")
        counts = ray_scoring.write_scores(inputs, models_dir, out_dir, out_format=out_format, **options)
        emit(json.dumps(counts, indent=2))
    else:
        counts = _write_rows(ray_scoring.iter_predictions(inputs, models_dir, **options), fmt)
    _echo_summary(counts, "", skips)
    if counts["failed"]:
        ctx.exit(3)


@main.command(context_settings=CONTEXT)
@click.option("--models", "models_dir", required=True, type=click.Path(), help="Models directory to serve (reloaded when it changes).")
@click.option("--listen", metavar="HOST:PORT", help=f"Address to listen on (default {DEFAULT_HOST}:{DEFAULT_PORT}; port 0: any free one).")
@click.option("--socket", "socket_path", metavar="PATH", help="Listen on a Unix socket instead of TCP.")
@click.option("--socket-mode", default=f"{ServeOptions.socket_mode:o}", show_default=True, metavar="OCTAL", help="The Unix socket's permissions.")
@click.option("--workers", type=click.IntRange(1), default=ServeOptions.workers, show_default=True, metavar="N", help="Processes that extract and score.")
@click.option("--queue", type=click.IntRange(0), default=ServeOptions.queue, show_default=True, metavar="N", help="Messages that may wait for a worker; more get 503.")
@click.option("--timeout", type=click.FloatRange(0.0, min_open=True), default=ServeOptions.timeout, show_default=True, metavar="SECONDS", help="Time limit of a request, its body's upload included.")
@click.option(
    "--learn-timeout", type=click.FloatRange(0.0, min_open=True), default=ServeOptions.learn_timeout, show_default=True, metavar="SECONDS",
    help="How long /v1/learn and /v1/forget wait for their change to be saved; past it 503 (the change may still be applied).",
)
@click.option("--max-bytes", type=click.IntRange(1), default=None, metavar="N", help="Largest message taken (default: the bundle's extract.max_bytes); larger ones get 413.")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File whose first line is the token that /v1/learn and /v1/forget require.")
@click.option("--log-format", type=click.Choice(LOG_FORMATS), default=ServeOptions.log_format, show_default=True)
def serve(models_dir, listen, socket_path, socket_mode, workers, queue, timeout, learn_timeout, max_bytes, token_file, log_format):
    """Run a scoring and learning daemon: HTTP on 127.0.0.1, or on a Unix socket.

    POST /v1/score and /v1/filter score one raw message; /v1/learn?label=spam|ham and /v1/forget
    change the model (a token from --token-file, or the socket's permissions); GET /healthz and
    /metrics. SIGTERM lets the requests in flight finish, then exits 0. See docs/serve.md.

    \b
    Example:
      spamclf serve --models models/demo --workers 2
      curl -s --data-binary @message.eml -H 'Content-Type: message/rfc822' http://127.0.0.1:7830/v1/score
    """
    if listen and socket_path:
        raise click.UsageError("use --listen or --socket, not both")
    try:
        mode = int(socket_mode, 8)
    except ValueError:
        raise click.BadParameter(f"{socket_mode!r} is not an octal mode like 600", param_hint="--socket-mode") from None
    from .serving.server import serve as run_daemon

    run_daemon(
        ServeOptions(
            models_dir, listen=listen, socket=socket_path, socket_mode=mode, workers=workers, queue=queue,
            timeout=timeout, learn_timeout=learn_timeout, max_bytes=max_bytes, token_file=token_file, log_format=log_format,
        )
    )


@main.command(context_settings=CONTEXT)
@click.option(
    "--models", "models_dir", type=click.Path(file_okay=False), help="Models directory to learn into (created when there is none; required, but for --server)."
)
@click.argument("inputs", nargs=-1, metavar="INPUT...")
@click.option("--spam", "spam", is_flag=True, help="Learn the messages as spam.")
@click.option("--ham", "ham", is_flag=True, help="Learn the messages as ham.")
@click.option("--forget", is_flag=True, help="Remove what was learned from the messages instead.")
@wait_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout.")
@config_options
@quiet_option
@server_options
@click.option("--token-file", type=click.Path(dir_okay=False), default=None, help="With --server: a file whose first line is the daemon's bearer token.")
@click.pass_context
def learn(ctx, models_dir, inputs, spam, ham, forget, wait, as_json, config_path, overrides, quiet, server, timeout, token_file):
    """Learn messages as spam or ham from your corrections, one message or a mailbox at a time.

    Takes the same inputs as 'predict': files, folders, Maildir/MH, mbox, compressed files,
    tables, and '-' for one message on stdin (what a mail client's "mark as spam" pipes in).
    With no bundle at --models, starts an empty one there (--config/--set choose its config).
    A message learned again with the same label is unchanged; with the other label it is moved
    (relabelled). spamclf's own X-Spam-* headers are ignored. --forget removes messages.

    Prints '12 learned, 1 relabelled, 3 unchanged, 0 failed' on stderr. Exit status 0, or 3
    when an input could not be read (the others are learned), the models directory cannot be
    used, or another process held it longer than --wait.

    \b
    Example:
      spamclf learn --models ~/.spamclf/models --spam - < message.eml
      spamclf learn --models ~/.spamclf/models --ham ~/Mail/inbox/cur/1701234567.M1P2.host
      spamclf learn --models ~/.spamclf/models --spam ~/Maildir/.Junk
      spamclf learn --models ~/.spamclf/models --forget wrongly-learned.eml
      spamclf learn --server unix:/run/spamclf/spamclf.sock --spam --token-file ~/.spamclf/token - < message.eml

    With --server URL instead of --models, the message on stdin ('-') is learned by a running
    'spamclf serve', which prints its JSON answer on stdout. Exit status 0 learned, 1 refused
    (a wrong token, a message it rejects) or an unreadable --token-file, 3 no message or no daemon.
    """
    from .commands.learn import format_summary, learn_inputs

    from .mail.sources import SkipLog

    if spam and ham:
        raise UsageError("give one label: --spam or --ham, not both")
    if forget and (spam or ham):
        raise UsageError("--forget takes no label: give --forget alone, or --spam or --ham to learn")
    if not (spam or ham or forget):
        raise UsageError("give a label: --spam or --ham (or --forget)")
    label = "spam" if spam else "ham" if ham else None
    if server:
        return _learn_through_server(ctx, server, timeout, token_file, inputs, label)
    if token_file:
        raise UsageError("--token-file is for --server")
    if models_dir is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "models_dir"))
    if as_json and sys.stdout is None:
        raise SpamclfError("stdout is closed: the JSON summary has nowhere to go")
    skips = SkipLog()
    summary = learn_inputs(
        models_dir, inputs, label, forget, wait, config=config_path, overrides=overrides, progress=not quiet, skips=skips
    )
    for note in summary.pop("notes"):
        click.echo(f"note: {printable(note)}", err=True)
    for row in summary["errors"]:
        echo_error(f"{row['path']}: {row['error']}")
    click.echo(format_summary(summary) + (f", {skips.summary()}" if skips.skipped else ""), err=True)
    if as_json:
        emit(json.dumps(summary))
    if summary["failed"]:
        sys.exit(3)


def _learn_through_server(ctx, server, timeout, token_file, inputs, label):
    """``learn --server URL (--spam|--ham|--forget) -``: the fast start's own function."""
    from click.core import ParameterSource

    from .serving.client import learn_stream

    kept = {"inputs", "spam", "ham", "forget", "server", "timeout", "token_file", "as_json", "quiet"}
    local = [p.opts[0] for p in ctx.command.params if p.name not in kept and ctx.get_parameter_source(p.name) != ParameterSource.DEFAULT]
    if tuple(inputs) != ("-",) or local:
        given = f": not with {', '.join(local)}" if local else ""
        raise UsageError(f"--server learns the one message on stdin: give it the input '-' alone{given}")
    code, error = learn_stream(server, label, binary(sys.stdin), binary(sys.stdout), token_file, timeout)
    if error:
        echo_error(error)
    ctx.exit(code)


@main.command("inspect", context_settings=CONTEXT)
@click.option("--models", "models_dir", required=True, type=click.Path(), help="Models directory to describe.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
def inspect_command(models_dir, as_json):
    """Show what a models directory is, and whether its manifest verifies.

    Prints the spamclf version and date that wrote it, the training data's fingerprint,
    the config, the threshold and the validation metrics. A bundle that does not verify
    gets its manifest and the state of each file, and exit status 3.

    \b
    Example:
      spamclf inspect --models models/demo
      spamclf inspect --models models/demo --json
    """
    from .commands.inspect import format_inspection, inspect_bundle

    info = inspect_bundle(models_dir)
    emit(json.dumps(info, indent=2, sort_keys=True) if as_json else format_inspection(info))
    if not info["verified"]:
        echo_error(info["problem"])
        sys.exit(3)


def entry_point() -> None:
    """The ``spamclf`` program (``python -m spamclf`` too): ``main`` with standard exit statuses.

    Once TensorFlow is loaded (training), the interpreter's own teardown of it is a visible share of
    a training run, after every file is written. So the process leaves without it: exit handlers run
    and the output is flushed first.
    """
    try:
        main()
    except SystemExit as exc:
        if "tensorflow" in sys.modules:
            _leave(exc.code)
        raise


def _leave(code) -> None:
    """``os._exit`` with the status ``sys.exit(code)`` would give, after what ``sys.exit`` would do
    that matters here: exit handlers, flushed output. Returns (for a normal exit) when it cannot."""
    import atexit

    if code is None or isinstance(code, bool):
        status = int(bool(code))
    elif isinstance(code, int):
        status = code
    else:  # a message for stderr: leave it to Python
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python reports it on the normal way out
            return
    os._exit(status & 0xFF)
