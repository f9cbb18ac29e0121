"""Which version of P7 a submission did: the draft this project implements
(`shared/assignment.md`: rounds in consumer.py, yearly_trends.png redrawn in a loop, a birthday
topic) or the course's final version (`shared/assignment-final.md`: `consumer.py 0 2` runs
forever, plot.py draws month.svg once, no birthday part).

`--version auto` weighs what the folder shows, read and never run: a committed month.svg, a
program that writes month.svg, and a consumer.py with no rounds speak for the final version; a
committed yearly_trends.png, a program that writes it, and a consumer.py with rounds speak for
the draft. The side with more evidence wins; a tie goes to the final version, the one the
course handed out. The report names the version and the evidence.
"""

import re

from .submission import inside

AUTO = "auto"
DRAFT_PLOTS = ("yearly_trends.png", "yearly_trend.png")
FINAL_PLOT = "month.svg"
# The draft's starter code: consume(partition_nums, max_iterations) run in rounds by threads or
# processes; a final-version consumer loops forever over the partitions it is given.
ROUND_WORDS = re.compile(r"max_iterations|\bThread\(|\bProcess\(|multiprocessing|threading")


def _sources(files):
    texts = {}
    for path in sorted(files.glob("*.py")):
        if path.name.endswith("_pb2.py") or not inside(files, path):  # no host file read
            continue
        try:
            texts[path.name] = path.read_text(errors="replace")[:1_000_000]
        except OSError:
            continue
    return texts


def detect(files):
    """("draft" or "final", the evidence in a sentence) for the files folder `files`."""
    sources = _sources(files)
    final, draft = [], []
    if inside(files, files / FINAL_PLOT):
        final.append(f"a committed {FINAL_PLOT}")
    committed = [name for name in DRAFT_PLOTS if inside(files, files / name)]
    if committed:
        draft.append(f"a committed {committed[0]}")
    writes_final = sorted(name for name, text in sources.items() if FINAL_PLOT in text)
    if writes_final:
        final.append(f"{writes_final[0]} writes {FINAL_PLOT}")
    writes_draft = sorted(name for name, text in sources.items()
                          if any(plot in text for plot in DRAFT_PLOTS))
    if writes_draft:
        draft.append(f"{writes_draft[0]} writes yearly_trends.png")
    consumer = sources.get("consumer.py")
    if consumer is not None:
        if ROUND_WORDS.search(consumer):
            draft.append("consumer.py runs rounds")
        else:
            final.append("consumer.py has no rounds")
    version = "draft" if len(draft) > len(final) else "final"
    found = final if version == "final" else draft
    other = draft if version == "final" else final
    because = ", ".join(found) or "nothing that tells the versions apart (the final is the " \
                                  "one the course handed out)"
    against = f"; against it: {', '.join(other)}" if other else ""
    return version, f"{because}{against}"
