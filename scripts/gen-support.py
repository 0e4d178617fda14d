#!/usr/bin/env python3
"""Writes signatures/support/*.tsv from ../shared/reference/support-periods.tsv
(phones, tablets, streamers, routers, OS releases) and support-periods-iot.tsv
(NAS, routers, cameras, hubs): one row per product or OS release, with the
pattern iotwatch matches against a device's model or OS, the end date (or
`ended`, `possibly-ended`, `unannounced`, `policy`), what kind of date it is,
and the source it was read from, so every status iotwatch reports is traceable.

Usage: scripts/gen-support.py [REFERENCE_DIR]   (default ../shared/reference)
"""
import calendar
import csv
import os
import re
import sys

ref = sys.argv[1] if len(sys.argv) > 1 else "../shared/reference"
out_dir = os.path.join(os.path.dirname(__file__), "..", "signatures", "support")
clean = lambda s: " ".join((s or "").replace("\t", " ").split())

# Products that are operating-system releases: matched against a device's OS.
OS_PRODUCTS = [
    ("Android (AOSP) version", "Android"),
    ("iOS", "iOS"),
    ("iPadOS", "iPadOS"),
    ("tvOS", "tvOS"),
    ("watchOS", "watchOS"),
    ("RouterOS", "RouterOS"),
    ("OpenWrt", "OpenWrt"),
    ("Linux kernel branch", "Linux"),
    ("Debian", "Debian"),
]


def end_of(text):
    t = text.strip()
    m = re.match(r"^(\d{4}-\d{2}-\d{2})", t)
    if m:
        return m.group(1)
    m = re.match(r"^(\d{4})-(\d{2})\b", t)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        return f"{y:04d}-{mo:02d}-{calendar.monthrange(y, mo)[1]:02d}"
    low = t.lower()
    if low.startswith("possibly ended"):
        return "possibly-ended"
    if low.startswith("ended") or low.startswith("outside security support") or low.startswith("no longer guaranteed"):
        return "ended"
    if low.startswith("not yet announced"):
        return "unannounced"
    return "policy"


def kind_of(text):
    low = text.lower()
    if "production" in low:
        return "production-until"
    if "hardening" in low:
        return None  # not a support period
    if low.strip() == "policy":
        return "policy"
    if "security" in low:
        return "security-updates-end"
    return "support-end"


def alternatives(model, hints):
    alts = []
    for part in re.split(r";", model):
        part = clean(part)
        if part:
            alts.append(part)
    for q in re.findall(r"(?:model string|model number|model)\s+'([^']+)'", hints):
        alts.append(q)
    seen, out = set(), []
    for a in alts:
        # "TL-WR940N v2/v4": the hardware versions are not in what devices send.
        a = re.sub(r"\s+[vV]\d+(?:/[vV]?\d+)*$", "", a)
        if a.lower() not in seen:
            seen.add(a.lower())
            out.append(a)
    return out


def model_pattern(alts):
    body = "|".join(re.escape(a).replace(r"\ ", r"[ _-]?") for a in alts)
    # A region or revision suffix ("HS110(US)", "RT-N10_B1") still matches.
    return rf"^(?:{body})(?:\s*\(\w+\)|[ _-][A-Z]\d)?$"


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f, delimiter="\t")


cols = ["id", "vendor", "product", "match", "pattern", "end", "end_kind", "confidence",
        "source", "retrieved", "notes"]
ids = {}  # unique across both files
for src_name, out_name in [("support-periods.tsv", "periods.tsv"), ("support-periods-iot.tsv", "iot.tsv")]:
    lines = []
    for r in rows(os.path.join(ref, src_name)):
        vendor, product = clean(r["vendor"]), clean(r["product"])
        model, hints = clean(r["model_or_version"]), clean(r["identifier_hints"])
        kind = kind_of(r["support_end_kind"])
        if kind is None:
            continue
        end = end_of(r["support_end"])
        os_name = next((o for p, o in OS_PRODUCTS if product.startswith(p)), None)
        if os_name and model:
            ver = re.match(r"[\d.]+", model)
            if not ver:
                continue
            v = ver.group(0).rstrip(".")
            match, pattern = "os", rf"^{re.escape(os_name)} {re.escape(v)}(?:[. -]|$)"
            label = f"{os_name} {v}"
        elif model:
            match, pattern = "model", model_pattern(alternatives(model, hints))
            label = model
        else:
            match, pattern, label = "vendor", "^", product
        slug = re.sub(r"[^a-z0-9]+", "-", f"{vendor} {label}".lower()).strip("-")[:60]
        n = ids.get(slug, 0)
        ids[slug] = n + 1
        rid = slug if n == 0 else f"{slug}-{n + 1}"
        notes = clean(r["notes"])
        if clean(r["policy"]):
            notes = (notes + " | policy: " if notes else "policy: ") + clean(r["policy"])
        notes = (notes + " | " if notes else "") + "as given: " + clean(r["support_end"]) + " / " + clean(r["support_end_kind"])
        lines.append([rid, vendor, product, match, pattern, end, kind, clean(r["confidence"]) or "-",
                      clean(r["source_url"]), clean(r["date_retrieved_or_source_date"]) or "-", notes])
    with open(os.path.join(out_dir, out_name), "w", encoding="utf-8") as f:
        f.write("# Published support periods, one row per product or OS release.\n")
        f.write(f"# Generated by scripts/gen-support.py from ../shared/reference/{src_name}; do not edit.\n")
        f.write("# match: model (the device's model), os (its OS and version) or vendor (a maker's\n")
        f.write("# policy, no date). end: a date, ended, possibly-ended, unannounced or policy.\n")
        f.write("# end_kind: security-updates-end, support-end, production-until (never a\n")
        f.write("# security date: iotwatch gives no status from it) or policy.\n")
        f.write("\t".join(cols) + "\n")
        for l in lines:
            f.write("\t".join(l) + "\n")
    print(f"{out_name}: {len(lines)} rows", file=sys.stderr)
