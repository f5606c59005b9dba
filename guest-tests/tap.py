"""TAP for the host-side test scripts: ok() per assertion, done() at the end.

    from tap import ok, done
    ok(cond, "what was checked")
    ...
    done()          # prints the plan, exits 1 if any assertion failed
"""
import sys

_count = _failed = 0


def ok(cond, what):
    """Print one TAP line for @cond; returns it."""
    global _count, _failed
    _count += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", _count, what), flush=True)
    _failed += 0 if cond else 1
    return cond


def done():
    """Print the plan and exit: 0 if every assertion passed, else 1."""
    print("1..%d" % _count)
    sys.exit(1 if _failed else 0)
