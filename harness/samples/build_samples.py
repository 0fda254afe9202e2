"""Write the bundled samples (`harness/samples/<set>/<official file names>`) from the team-written text.

    python -m taiyi_bench.harness.samples.build_samples [--out DIR]

The text lives in `text_*.py` beside this file with light inline markup; this script computes
offsets, IOB tags, PubTator lines, synthetic concept ids and the 4-option MCMLE files, so the
samples are correct by construction and stay in the official formats. `tests/test_samples.py`
checks that the shipped files equal a fresh build.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from pathlib import Path

from taiyi_bench.harness.registry import CMEIE_SCHEMAS, HOC_HALLMARKS
from taiyi_bench.harness.samples import text_cdr, text_en, text_qa_en, text_zh

SAMPLES_DIR = Path(__file__).resolve().parent
IOB_FILES = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}
CDR_FILES = {"train": "CDR_TrainingSet.PubTator.txt", "dev": "CDR_DevelopmentSet.PubTator.txt", "test": "CDR_TestSet.PubTator.txt"}
LITCOVID_FILES = {"train": "BC7-LitCovid-Train.csv", "dev": "BC7-LitCovid-Dev.csv", "test": "BC7-LitCovid-Test-GS.csv"}
_TOKEN = re.compile(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]")  # words/numbers and single punctuation marks
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


# ---------------------------------------------------------------- shared helpers
def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _iob_sentence(text: str, spans: list[tuple[str, int, int]]) -> list[tuple[str, str]]:
    """(token, tag) pairs; every span must start and end on token boundaries."""
    tokens = _tokens(text)
    tags = ["O"] * len(tokens)
    for kind, start, end in spans:
        inside = [i for i, (_, s, e) in enumerate(tokens) if s >= start and e <= end]
        if not inside or tokens[inside[0]][1] != start or tokens[inside[-1]][2] != end:
            raise ValueError(f"span {text[start:end]!r} does not align with tokens in {text!r}")
        for position, i in enumerate(inside):
            tags[i] = ("B-" if position == 0 else "I-") + kind
    return [(token, tag) for (token, _, _), tag in zip(tokens, tags, strict=True)]


def _write_iob(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{t}\t{g}\n" for t, g in s) + "\n" for s in sentences), encoding="utf-8")


def _bracketed(marked: str, kind: str) -> tuple[str, list[tuple[str, int, int]]]:
    """'a [b c] d' -> ('a b c d', [(kind, 2, 5)]) (single level)."""
    text, spans, start = [], [], None
    for char in marked:
        if char == "[":
            start = len("".join(text))
        elif char == "]":
            spans.append((kind, start, len("".join(text))))
        else:
            text.append(char)
    return "".join(text), spans


def _write_json(path: Path, data: object, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


# ---------------------------------------------------------------- BC5CDR (PubTator + IOB)
class _ConceptIds:
    """Synthetic MeSH-like ids, stable in order of first use: D90xxxx chemicals, D95xxxx diseases."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, name: str | None) -> str:
        if name is None:
            return "-1"
        key = (kind, name)
        if key not in self.ids:
            count = sum(1 for k in self.ids if k[0] == kind and (k[1] in text_cdr.SUPPLEMENTARY) == (name in text_cdr.SUPPLEMENTARY)) + 1
            if name in text_cdr.SUPPLEMENTARY:
                self.ids[key] = f"C90{count:04d}"
            else:
                self.ids[key] = f"D{90 if kind == 'Chemical' else 95}{count:04d}"
        return self.ids[key]


def _cdr_mentions(doc: dict) -> tuple[str, list[tuple[int, int, str, str, tuple, tuple | None]]]:
    text = f"{doc['title']} {doc['abstract']}"
    taken: list[tuple[int, int]] = []
    found = []
    for surface in sorted(doc["mentions"], key=len, reverse=True):
        kind, concept, *rest = doc["mentions"][surface]
        concepts = concept if isinstance(concept, tuple) else (concept,)
        pattern = re.compile(r"(?<![A-Za-z0-9])" + re.escape(surface) + r"(?![A-Za-z0-9])")
        hits = 0
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), m.end(), surface, kind, concepts, rest[0] if rest else None))
            hits += 1
        if not hits:
            raise ValueError(f"{doc['pmid']}: mention {surface!r} not found")
    return text, sorted(found)


def build_cdr(out: Path) -> None:
    ids = _ConceptIds()
    for split, docs in text_cdr.DOCS.items():
        blocks, chem_sents, dise_sents = [], [], []
        for doc in docs:
            text, mentions = _cdr_mentions(doc)
            lines = [f"{doc['pmid']}|t|{doc['title']}", f"{doc['pmid']}|a|{doc['abstract']}"]
            for start, end, surface, kind, concepts, individual in mentions:
                line = f"{doc['pmid']}\t{start}\t{end}\t{surface}\t{kind}\t" + "|".join(ids(kind, c) for c in concepts)
                if individual:
                    line += "\t" + "|".join(individual)
                elif doc.get("trailing_tab"):
                    line += "\t"
                lines.append(line)
            for chemical, disease in doc["relations"]:
                lines.append(f"{doc['pmid']}\tCID\t{ids('Chemical', chemical)}\t{ids('Disease', disease)}")
            blocks.append("\n".join(lines) + "\n")
            # The IOB files are the same documents split into sentences (title = one sentence).
            offset = 0
            for sentence in [doc["title"], *_SENTENCE_END.split(doc["abstract"])]:
                start = text.index(sentence, offset)
                offset = start + len(sentence)
                inside = [(k, s - start, e - start) for s, e, _, k, _, _ in mentions if s >= start and e <= offset]
                chem_sents.append(_iob_sentence(sentence, [m for m in inside if m[0] == "Chemical"]))
                dise_sents.append(_iob_sentence(sentence, [m for m in inside if m[0] == "Disease"]))
        path = out / "BC5CDR-CDR-RE" / CDR_FILES[split]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(blocks) + "\n", encoding="utf-8")
        _write_iob(out / "BC5CDR-Chem" / IOB_FILES[split], chem_sents)
        _write_iob(out / "BC5CDR-Dise" / IOB_FILES[split], dise_sents)


def build_single_type_iob(out: Path, subdir: str, kind: str, sentences: dict[str, list[str]]) -> None:
    for split, marked in sentences.items():
        _write_iob(out / subdir / IOB_FILES[split], [_iob_sentence(*_bracketed(m, kind)) for m in marked])


# ---------------------------------------------------------------- CBLUE
def _nested(marked: str) -> tuple[str, list[tuple[str, int, int]]]:
    """'[dis 急性[bod 阑尾]炎]' -> ('急性阑尾炎', [('dis', 0, 5), ('bod', 2, 4)]), any depth."""
    text: list[str] = []
    stack: list[tuple[str, int]] = []
    spans = []
    i = 0
    while i < len(marked):
        if marked[i] == "[":
            kind, _, _ = marked[i + 1:].partition(" ")
            stack.append((kind, len(text)))
            i += len(kind) + 2
            continue
        if marked[i] == "]":
            kind, start = stack.pop()
            spans.append((kind, start, len(text)))
        else:
            text.append(marked[i])
        i += 1
    if stack:
        raise ValueError(f"unclosed entity in {marked!r}")
    return "".join(text), sorted(spans, key=lambda s: (s[1], -s[2]))


def build_cmeee(out: Path) -> None:
    for split, sentences in text_zh.CMEEE.items():
        records = []
        for index, marked in enumerate(sentences):
            text, spans = _nested(marked)
            for o_split, o_index, kind, substring in text_zh.OVERLAP:
                if (o_split, o_index) == (split, index):
                    start = text.index(substring)
                    spans.append((kind, start, start + len(substring)))
            spans.sort(key=lambda s: (s[1], -s[2]))
            entities = [{"start_idx": s, "end_idx": e, "type": k, "entity": text[s:e]} for k, s, e in spans]
            records.append({"text": text, "entities": entities})
        _write_json(out / "CMeEE-V2" / f"CMeEE-V2_{split}.json", records)


def build_cmeie(out: Path) -> None:
    schemas = {(s, p, o) for s, p, o, _ in CMEIE_SCHEMAS}
    for split, items in text_zh.CMEIE.items():
        rows = []
        for text, triples in items:
            spo_list = []
            for subject, subject_type, predicate, obj, object_type, combined in triples:
                if (subject_type, predicate, object_type) not in schemas or subject not in text or obj not in text:
                    raise ValueError(f"bad CMeIE triple {(subject, predicate, obj)} in {text!r}")
                spo_list.append({
                    "Combined": combined, "predicate": predicate, "subject": subject, "subject_type": subject_type,
                    "object": {"@value": obj}, "object_type": {"@value": object_type},
                })
            rows.append({"text": text, "spo_list": spo_list})
        _write_jsonl(out / "CMeIE-V2" / f"CMeIE-V2_{split}.jsonl", rows)
    lines = ["# direction: 0: 双向关系； 1: 单向关系", "["]
    for i, (s, p, o, d) in enumerate(CMEIE_SCHEMAS):
        entry = json.dumps({"subject_type": s, "predicate": p, "object_type": o, "direction": d}, ensure_ascii=False)
        lines.append(("," if i else "") + entry)
    lines.append("]")
    (out / "CMeIE-V2" / "53_schemas.json").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_kuake(out: Path) -> None:
    for split, items in text_zh.KUAKE_QIC.items():
        records = [{"id": f"s{i}", "query": q, "label": label} for i, (q, label) in enumerate(items, start=1)]
        _write_json(out / "KUAKE-QIC" / f"KUAKE-QIC_{split}.json", records)


# ---------------------------------------------------------------- English classification
def build_hoc(out: Path) -> None:
    for split, abstracts in text_en.HOC.items():
        lines = ["labels\tsentence\tindex"]
        for pmid, sentences in abstracts.items():
            for n, (sentence, hallmarks) in enumerate(sentences):
                flags = ",".join(f"{i}_{int(i in hallmarks)}" for i in range(len(HOC_HALLMARKS)))
                lines.append(f"{flags}\t{sentence}\t{pmid}_s{n}")
        path = out / "HoC" / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_litcovid(out: Path) -> None:
    number = 0
    for split, articles in text_en.LITCOVID.items():
        buffer = io.StringIO(newline="")
        # A plain csv.writer on purpose (not taiyi_bench.harness.csv_safety): these are copies of the official
        # input files, written from text in this repository that no model or user chooses, and a
        # leading "'" would change the data the LitCovid reader reads.
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["pmid", "journal", "title", "abstract", "keywords", "pub_type", "authors", "doi", "label"])
        for title, abstract, labels, journal, keywords, pub_type in articles:
            number += 1
            pmid = f"99300{number:03d}"
            authors = f"Sample, Author {number};Example, Writer"
            writer.writerow([pmid, journal, title, abstract, keywords, pub_type, authors, f"10.99999/taiyi.sample.{pmid}", ";".join(labels)])
        path = out / "BC7-LitCovid" / LITCOVID_FILES[split]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buffer.getvalue(), encoding="utf-8")


# ---------------------------------------------------------------- QA
def build_pubmedqa(out: Path) -> None:
    records, truth = {}, {}
    test, train = text_qa_en.PUBMEDQA["test"], text_qa_en.PUBMEDQA["train"]
    # Interleaved, as ori_pqal.json mixes test and train PMIDs.
    ordered = [item for pair in zip(test, train + [None] * len(test), strict=False) for item in pair if item]
    for pmid, question, contexts, meshes, year, decision, long_answer in ordered:
        records[pmid] = {
            "QUESTION": question,
            "CONTEXTS": [c for _, c in contexts],
            "LABELS": [label for label, _ in contexts],
            "MESHES": meshes,
            "YEAR": year,
            "reasoning_required_pred": decision,
            "reasoning_free_pred": decision,
            "final_decision": decision,
            "LONG_ANSWER": long_answer,
        }
    for pmid, *_, decision, _ in test:
        truth[pmid] = decision
    _write_json(out / "PubMedQA" / "ori_pqal.json", records, indent=4)
    _write_json(out / "PubMedQA" / "test_ground_truth.json", truth, indent=None)


def _phrases(question: str) -> list[str]:
    return [p.strip().lower() for p in re.split(r"[,.?;:]| and | with | has | of | is ", question) if len(p.strip()) > 2]


def build_medqa(out: Path) -> None:
    for split, items in text_qa_en.MEDQA_US.items():
        rows = []
        for index, (q, written, letter, meta) in enumerate(items):
            # Swap the answer into letter A, B, C, D in turn, so that no letter dominates the gold.
            options, target = dict(written), "ABCD"[index % 4]
            options[letter], options[target] = written[target], written[letter]
            rows.append({"question": q, "answer": options[target], "options": options, "meta_info": meta, "answer_idx": target,
                         "metamap_phrases": _phrases(q)})
        _write_jsonl(out / "MedQA-USMLE" / f"phrases_no_exclude_{split}.jsonl", rows)
    for split, items in text_zh.MCMLE.items():
        five, four = [], []
        used = dict.fromkeys("ABCD", 0)
        for index, (question, texts, letter, meta) in enumerate(items):
            options = dict(zip("ABCDE", texts, strict=True))
            five.append({"question": question, "options": options, "answer": options[letter], "meta_info": meta, "answer_idx": letter})
            # Drop a distractor before or after the answer, whichever puts the 4-option answer on the
            # letter used least so far, so that no letter dominates the gold.
            answer_at = "ABCDE".index(letter)
            distractors = [k for k in options if k != letter]
            new_at = {k: answer_at - ("ABCDE".index(k) < answer_at) for k in distractors}
            dropped = min(distractors, key=lambda k: (used["ABCD"[new_at[k]]], (index + "ABCDE".index(k)) % 5))
            used["ABCD"[new_at[dropped]]] += 1
            kept = [options[k] for k in options if k != dropped]
            options4 = dict(zip("ABCD", kept, strict=True))
            letter4 = next(k for k, v in options4.items() if v == options[letter])
            four.append({"question": question, "options": options4, "answer": options[letter], "meta_info": meta, "answer_idx": letter4})
        _write_jsonl(out / "MedQA-MCMLE" / f"{split}.jsonl", five)
        _write_jsonl(out / "MedQA-MCMLE" / "4_options" / f"{split}.jsonl", four)


def build(out: Path = SAMPLES_DIR) -> None:
    build_cdr(out)
    build_single_type_iob(out, "NCBI-disease", "Disease", text_en.NCBI)
    build_single_type_iob(out, "CHEMDNER", "Chemical", text_en.CHEMDNER)
    build_cmeee(out)
    build_cmeie(out)
    build_kuake(out)
    build_hoc(out)
    build_litcovid(out)
    build_pubmedqa(out)
    build_medqa(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="output folder (default: the bundled samples)")
    build(parser.parse_args(argv).out)


if __name__ == "__main__":
    main()
