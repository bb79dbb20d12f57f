"""The openspf RFC 7208 conformance suite (203 tests) against `diguectl spf --batch`, with
every scenario's zone data served by a real nsd on loopback (tests/integration/dnsharness.py).

Driver rules follow the suite's own conventions (pyspf's test driver):
- SPF records are also served as TXT, unless the name has any TXT entry (even "TXT: NONE",
  which means "no TXT record"); that is what the "Selecting records" tests rely on.
- TIMEOUT in a name's list: queries for that name of any type with no record listed before
  the TIMEOUT go unanswered, so the resolver really times out (short timeout in the config).
- An expected explanation "DEFAULT" means: no explanation from an exp= modifier.
Prints "N passed, M failed"; exits 1 when any test fails.
"""

import json
import os
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import DnsServer, TYPE_CODES, rr  # noqa: E402
from harness import DIGUECTL, SHARED, dns_config  # noqa: E402

SUITE = os.path.join(SHARED, "spf", "rfc7208-tests.yml")
BATCH_TIMEOUT = 120


def raw(value):
    """YAML double-quoted "\\xNN" escapes are meant as bytes: keep them as bytes."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def zone_records(zonedata):
    """(records for the root zone, drop rules) from a scenario's zonedata."""
    records, drop = [], set()
    for name, entries in zonedata.items():
        owner = raw(name)
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        answered = set()
        timeout = False
        for entry in entries:
            if entry == "TIMEOUT":
                timeout = True
                break
            (rtype, value), = entry.items()
            if value == "NONE":  # no such record; does not answer a query either
                continue
            answered.add(rtype)
            if rtype in ("TXT", "SPF"):
                strings = [raw(s) for s in value] if isinstance(value, list) else raw(value)
                records.append(rr(owner, rtype, strings))
                if rtype == "SPF" and not has_txt:
                    records.append(rr(owner, "TXT", strings))
            elif rtype == "MX":
                records.append(rr(owner, "MX", (value[0], raw(value[1]))))
            elif rtype in ("PTR", "CNAME"):
                records.append(rr(owner, rtype, raw(value)))
            else:
                records.append(rr(owner, rtype, value))
        if timeout:
            # Generated TXT records come after the TIMEOUT in the suite's model: TXT times out
            # unless a real TXT entry preceded it.
            for rtype in TYPE_CODES:
                if rtype not in answered:
                    drop.add((owner, rtype))
    return records, drop


def run_scenario(doc, workdir):
    records, drop = zone_records(doc["zonedata"])
    names = sorted(doc["tests"])
    with DnsServer({".": records}, drop=drop) as dns:
        cfg = dns_config(workdir, dns.address, hostname="spf-test.digue.invalid", timeout_ms=300)
        lines = []
        for name in names:
            t = doc["tests"][name]
            lines.append("%s\t%s\t%s" % (t["host"], t["mailfrom"], t["helo"]))
        batch = os.path.join(workdir, "batch.tsv")
        with open(batch, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        proc = subprocess.run([DIGUECTL, "--config", cfg, "spf", "--batch", batch],
                              capture_output=True, text=True, timeout=BATCH_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError("diguectl failed (%d): %s" % (proc.returncode, proc.stderr))
    outputs = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    if len(outputs) != len(names):
        raise RuntimeError("diguectl gave %d results for %d tests" % (len(outputs), len(names)))
    return zip(names, outputs)


def judge(test, out):
    expected = test["result"]
    expected = expected if isinstance(expected, list) else [expected]
    problems = []
    if out.get("result") not in expected:
        problems.append("result %s, want %s" % (out.get("result"), "|".join(expected)))
    if "explanation" in test and out.get("result") == "fail":
        want = "" if test["explanation"] == "DEFAULT" else test["explanation"]
        if out.get("explanation") != want:
            problems.append("explanation %r, want %r" % (out.get("explanation"), want))
    return problems


def main():
    if not os.path.exists(DIGUECTL):
        print("missing %s (build the diguectl target)" % DIGUECTL)
        return 1
    with open(SUITE, "rb") as f:
        docs = list(yaml.safe_load_all(f))
    passed = failed = 0
    for doc in docs:
        with tempfile.TemporaryDirectory(prefix="digue-spf-") as workdir:
            for name, out in run_scenario(doc, workdir):
                problems = judge(doc["tests"][name], out)
                if problems:
                    failed += 1
                    print("FAIL %s / %s: %s (problem: %s)" % (
                        doc["description"], name, "; ".join(problems), out.get("problem")))
                else:
                    passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
