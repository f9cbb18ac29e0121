"""A section of BENCHMARKS.md written by a benchmark of its own (bench.cluster, bench.grading)
after bench.bench has written the rest of the file."""


def replace_section(out, heading, text):
    """Put `text` (a section starting with `heading`) into the file `out` in place of the
    section of that heading, which runs to the next "## " heading or the end; at the end when
    there is none."""
    current = out.read_text() if out.exists() else ""
    start = current.find(heading + "\n")
    if start < 0:
        before, after = current.rstrip(), ""
    else:
        end = current.find("\n## ", start + len(heading))
        before = current[:start].rstrip()
        after = "" if end < 0 else current[end + 1:]
    parts = [part for part in (before, text.strip(), after.strip()) if part]
    out.write_text("\n\n".join(parts) + "\n")
