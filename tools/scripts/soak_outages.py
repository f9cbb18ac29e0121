"""Broker outages under load, as long as you like (tools/outages.py's scenario):

    .venv/bin/python -m tools.scripts.soak_outages --outages 50
    .venv/bin/python -m tools.scripts.soak_outages --outages 5 --down 1 20

A broker of its own on free ports, in a temporary folder (the one at KAFKA_BOOTSTRAP is not
touched), killed -9 and started again `--outages` times in all, the last time for long enough
to stop the producer meanwhile. Prints what happened as JSON, then PASS (exit 0) when nothing
was lost or counted twice and no program died or left a traceback, else FAIL (exit 1).
"""

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from tools import harness
from tools.outages import DOWN_SEC, UP_SEC, run_outages

# The producer must stop within this many seconds of the signal, its broker away.
PRODUCER_STOP_LIMIT_SEC = 40


def main(argv=None):
    parser = argparse.ArgumentParser(description="Kill -9 and restart a private broker under "
                                                 "load; check that nothing was lost or died.")
    parser.add_argument("--outages", type=int, default=50,
                        help="how many, the long last one (the producer stopped) included")
    parser.add_argument("--down", type=float, nargs=2, default=DOWN_SEC, metavar=("MIN", "MAX"),
                        help="outage length range in seconds")
    parser.add_argument("--up", type=float, nargs=2, default=UP_SEC, metavar=("MIN", "MAX"),
                        help="time under load between outages, in seconds")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--sigterm", action="store_true",
                        help="stop the producer with SIGTERM instead of SIGINT (Ctrl-C)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="start no new outage after this long (the last one follows)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="p7-outage-soak-"))
    try:
        result = run_outages(workdir, args.outages - 1, random.Random(args.seed), args.up,
                             args.down, say=lambda text: print(text, flush=True),
                             stop_signal=signal.SIGTERM if args.sigterm else signal.SIGINT,
                             minutes=args.minutes)
    except harness.BrokerError as err:
        print(f"soak_outages: error: {err}", file=sys.stderr)
        return 1
    except AssertionError as err:  # a wait that timed out: the soak failed
        print(f"FAIL: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))
    ok = not (result["problems"] or result["deaths"] or result["tracebacks"]
              or any(code != 0 for code in result["exit_codes"].values())
              or result["producer_stop_sec"] > PRODUCER_STOP_LIMIT_SEC)
    print("PASS: nothing lost, nothing counted twice, no program died" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
