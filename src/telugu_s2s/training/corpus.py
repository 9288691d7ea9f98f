"""The Telugu conversational corpus: what a caller may say, and the one right reply.

Answers are short on purpose (about one second of speech): the demo model has to learn
to answer with the right sentence in the right voice, on a 2-core CPU.

An *intent* is one thing a caller can say, in several phrasings, with one reply:
- ``qa<NN>``: a question of QA_PAIRS, in 3 phrasings (the original and two of PHRASINGS);
- ``intro:<name>``: "my name is <name>", 3 phrasings; the reply greets the name;
- ``recall``: "what is my name?", 3 phrasings; the reply names the name introduced earlier in
  the conversation (so its reply depends on the context);
- ``ood``: a Telugu sentence outside the product's questions (a statement, another question,
  half a sentence); the reply is the fixed FALLBACK.
The last phrasing of every intent (HELD_OUT_PHRASING) and the OOD_TEST sentences never appear
in training: they measure whether the model understood the question or only its sound.
Dialogues are not fixed scripts: training composes them at random per batch, the test
composes its own with a seed (`compose_dialogues`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass

# (topic, question, answer). Every answer text is unique: the reply-accuracy score
# compares a generated reply against every other answer in the same voice.
QA_PAIRS: tuple[tuple[str, str, str], ...] = (
    # greetings
    ("greeting", "నమస్కారం", "నమస్కారం, ఎలా ఉన్నారు?"),
    ("greeting", "మీరు ఎలా ఉన్నారు?", "నేను బాగున్నాను"),
    ("greeting", "శుభోదయం", "శుభోదయం, స్వాగతం"),
    ("greeting", "శుభ రాత్రి", "శుభ రాత్రి, మళ్ళీ కలుద్దాం"),
    ("greeting", "మీరు ఎవరు?", "నేను మీ సహాయకుడిని"),
    ("greeting", "ధన్యవాదాలు", "పర్వాలేదు, సంతోషం"),
    ("greeting", "వెళ్ళొస్తాను", "సరే, మళ్ళీ రండి"),
    ("greeting", "మీరు ఎక్కడ నుండి?", "నేను హైదరాబాద్ నుండి"),
    ("greeting", "మీకు తెలుగు వచ్చా?", "అవును, తెలుగు వచ్చు"),
    ("greeting", "బాగున్నారా?", "చాలా బాగున్నాను"),
    # time
    ("time", "ఇప్పుడు సమయం ఎంత?", "ఇప్పుడు పది గంటలు"),
    ("time", "ఈ రోజు ఏ రోజు?", "ఈ రోజు సోమవారం"),
    ("time", "ఈ రోజు తేదీ ఎంత?", "ఈ రోజు ఐదవ తేదీ"),
    ("time", "బ్యాంకు ఎప్పుడు తెరుస్తారు?", "ఉదయం తొమ్మిది గంటలకు"),
    ("time", "దుకాణం ఎప్పుడు మూస్తారు?", "రాత్రి ఎనిమిది గంటలకు"),
    ("time", "రైలు ఎప్పుడు వస్తుంది?", "అరగంటలో వస్తుంది"),
    ("time", "బస్సు ఎప్పుడు వస్తుంది?", "పది నిమిషాల్లో"),
    ("time", "ఇది ఏ నెల?", "ఇది జనవరి నెల"),
    ("time", "రేపు సెలవా?", "అవును, రేపు సెలవు"),
    ("time", "సమావేశం ఎప్పుడు?", "మధ్యాహ్నం రెండు గంటలకు"),
    # weather
    ("weather", "ఈ రోజు వాతావరణం ఎలా ఉంది?", "ఎండగా ఉంది"),
    ("weather", "వర్షం పడుతుందా?", "సాయంత్రం వర్షం పడవచ్చు"),
    ("weather", "బయట చలిగా ఉందా?", "కొంచెం చలిగా ఉంది"),
    ("weather", "రేపు వాతావరణం ఎలా ఉంటుంది?", "రేపు మేఘాలు ఉంటాయి"),
    ("weather", "గొడుగు తీసుకెళ్ళాలా?", "అవును, గొడుగు తీసుకెళ్ళండి"),
    ("weather", "ఉష్ణోగ్రత ఎంత?", "ముప్పై డిగ్రీలు"),
    ("weather", "గాలి బలంగా ఉందా?", "లేదు, గాలి తక్కువ"),
    ("weather", "వేసవి ఎప్పుడు వస్తుంది?", "ఏప్రిల్ లో వస్తుంది"),
    # directions
    ("directions", "రైల్వే స్టేషన్ ఎక్కడ ఉంది?", "నేరుగా వెళ్ళి ఎడమకు తిరగండి"),
    ("directions", "ఆసుపత్రి ఎక్కడ ఉంది?", "వంతెన దగ్గర ఉంది"),
    ("directions", "బస్ స్టాండ్ ఎంత దూరం?", "రెండు కిలోమీటర్లు"),
    ("directions", "దగ్గరలో బ్యాంకు ఉందా?", "అవును, కుడి వైపు ఉంది"),
    ("directions", "విమానాశ్రయానికి ఎలా వెళ్ళాలి?", "టాక్సీ తీసుకోండి"),
    ("directions", "మార్కెట్ ఎక్కడ?", "గుడి వెనుక ఉంది"),
    ("directions", "పోస్ట్ ఆఫీస్ ఎక్కడ ఉంది?", "పాఠశాల పక్కన ఉంది"),
    ("directions", "నేను ఎటు వెళ్ళాలి?", "కుడి వైపు వెళ్ళండి"),
    ("directions", "ఇక్కడ నుండి దూరమా?", "లేదు, చాలా దగ్గర"),
    # food
    ("food", "భోజనం సిద్ధంగా ఉందా?", "అవును, రండి తినండి"),
    ("food", "మీకు ఏమి తినాలని ఉంది?", "నాకు బిర్యానీ కావాలి"),
    ("food", "మంచి హోటల్ ఎక్కడ ఉంది?", "పక్క వీధిలో ఉంది"),
    ("food", "కాఫీ ఉందా?", "అవును, వేడి కాఫీ ఉంది"),
    ("food", "ఈ రోజు వంట ఏమిటి?", "ఈ రోజు పప్పు అన్నం"),
    ("food", "దోసె ధర ఎంత?", "దోసె నలభై రూపాయలు"),
    ("food", "శాకాహారం దొరుకుతుందా?", "అవును, శాకాహారం ఉంది"),
    ("food", "నాకు నీళ్ళు కావాలి", "ఇదిగో, నీళ్ళు తీసుకోండి"),
    ("food", "మీకు ఇష్టమైన పండు ఏది?", "నాకు మామిడి పండు ఇష్టం"),
    # family
    ("family", "మీ కుటుంబంలో ఎంత మంది?", "మేము నలుగురం"),
    ("family", "మీ అమ్మ ఎలా ఉన్నారు?", "అమ్మ బాగున్నారు"),
    ("family", "మీకు పిల్లలు ఉన్నారా?", "ఇద్దరు పిల్లలు ఉన్నారు"),
    ("family", "మీ నాన్న ఏమి చేస్తారు?", "నాన్న ఉపాధ్యాయుడు"),
    ("family", "మీ అన్నయ్య ఎక్కడ ఉంటారు?", "అన్నయ్య బెంగళూరులో ఉంటారు"),
    ("family", "మీకు పెళ్ళి అయిందా?", "అవును, పెళ్ళి అయింది"),
    ("family", "మీ చెల్లెలు ఏమి చదువుతుంది?", "చెల్లెలు డాక్టర్ చదువుతుంది"),
    # help requests
    ("help", "నాకు సహాయం కావాలి", "చెప్పండి, ఏమి కావాలి?"),
    ("help", "అత్యవసరం, సహాయం చేయండి", "వెంటనే అంబులెన్స్ పిలుస్తాను"),
    ("help", "నా ఫోన్ పోయింది", "పోలీసులకు ఫిర్యాదు చేయండి"),
    ("help", "నాకు ఆరోగ్యం బాగాలేదు", "డాక్టర్ దగ్గరకు వెళ్ళండి"),
    ("help", "నా బ్యాగ్ కనిపించడం లేదు", "మనం కలిసి వెతుకుదాం"),
    ("help", "టికెట్ ఎలా బుక్ చేయాలి?", "ఆన్లైన్ లో బుక్ చేయండి"),
    ("help", "నాకు దారి తెలియదు", "నేను దారి చూపిస్తాను"),
    ("help", "డబ్బులు ఎక్కడ మార్చుకోవాలి?", "బ్యాంకులో మార్చుకోండి"),
    ("help", "ఇంటర్నెట్ పని చేయడం లేదు", "రూటర్ ఆపి మళ్ళీ ఆన్ చేయండి"),
)


# Two more phrasings per question, in QA_PAIRS order; the second (phrasing 2) is held out of
# training entirely.
PHRASINGS: tuple[tuple[str, str], ...] = (
    ("నమస్తే", "హలో అండీ, నమస్కారం"),
    ("ఎలా ఉన్నారు మీరు?", "మీరు ఎలా ఉన్నారండీ?"),
    ("శుభోదయం అండీ", "గుడ్ మార్నింగ్"),
    ("శుభ రాత్రి అండీ", "గుడ్ నైట్"),
    ("మీరు ఎవరండీ?", "మీ పరిచయం ఏమిటి?"),
    ("చాలా ధన్యవాదాలు", "థాంక్యూ"),
    ("ఇక నేను వెళ్తాను", "సరే, వెళ్ళొస్తానండీ"),
    ("మీది ఏ ఊరు?", "మీరు ఎక్కడ నుండి వచ్చారు?"),
    ("మీరు తెలుగు మాట్లాడతారా?", "తెలుగు మాట్లాడగలరా?"),
    ("మీరు బాగున్నారా?", "అంతా బాగున్నారా?"),
    ("టైం ఎంత అయింది?", "ఇప్పుడు ఎన్ని గంటలు?"),
    ("ఈ రోజు ఏ వారం?", "ఇవాళ ఏ రోజు?"),
    ("ఇవాళ తేదీ ఎంత?", "ఈ రోజు ఎన్నో తేదీ?"),
    ("బ్యాంకు ఎన్ని గంటలకు తెరుస్తారు?", "బ్యాంకు తెరిచే సమయం ఎంత?"),
    ("షాపు ఎప్పుడు మూస్తారు?", "దుకాణం ఎన్ని గంటల వరకు ఉంటుంది?"),
    ("రైలు ఎన్ని గంటలకు వస్తుంది?", "ట్రైన్ ఎప్పుడు వస్తుంది?"),
    ("బస్సు ఎంత సేపట్లో వస్తుంది?", "తరువాతి బస్సు ఎప్పుడు?"),
    ("ఇప్పుడు ఏ నెల నడుస్తోంది?", "ఈ నెల ఏది?"),
    ("రేపు సెలవు ఉందా?", "రేపు హాలిడేనా?"),
    ("మీటింగ్ ఎప్పుడు?", "సమావేశం ఎన్ని గంటలకు?"),
    ("ఇవాళ వాతావరణం ఎలా ఉంది?", "బయట వాతావరణం ఎలా ఉంది?"),
    ("వాన పడుతుందా?", "ఈ రోజు వర్షం వస్తుందా?"),
    ("బయట చల్లగా ఉందా?", "ఇప్పుడు చలి ఎక్కువగా ఉందా?"),
    ("రేపు వాతావరణం ఏమిటి?", "రేపటి వాతావరణం ఎలా ఉంటుంది?"),
    ("నాకు గొడుగు కావాలా?", "గొడుగు తీసుకెళ్ళమంటారా?"),
    ("ఎన్ని డిగ్రీలు ఉంది?", "ఇప్పుడు ఉష్ణోగ్రత ఎంత ఉంది?"),
    ("గాలి ఎక్కువగా వీస్తోందా?", "బయట గాలి బలంగా ఉందా?"),
    ("ఎండాకాలం ఎప్పుడు వస్తుంది?", "వేసవి కాలం ఎప్పుడు మొదలవుతుంది?"),
    ("స్టేషన్ ఎక్కడ?", "రైల్వే స్టేషన్ కి దారి ఏది?"),
    ("హాస్పిటల్ ఎక్కడ ఉంది?", "దగ్గరలో ఆసుపత్రి ఎక్కడ?"),
    ("బస్ స్టాండ్ ఎంత దూరంలో ఉంది?", "బస్ స్టాండ్ కి ఎంత దూరం?"),
    ("ఇక్కడ బ్యాంకు ఉందా?", "దగ్గర్లో ఏదైనా బ్యాంకు ఉందా?"),
    ("ఎయిర్పోర్ట్ కి ఎలా వెళ్ళాలి?", "విమానాశ్రయానికి దారి ఏది?"),
    ("మార్కెట్ ఎక్కడ ఉంది?", "సంత ఎక్కడ ఉంది?"),
    ("తపాలా కార్యాలయం ఎక్కడ?", "పోస్టాఫీసు ఎక్కడ?"),
    ("నేను ఏ వైపు వెళ్ళాలి?", "ఎటు వైపు వెళ్ళాలి?"),
    ("ఇక్కడి నుండి చాలా దూరమా?", "అది దూరమా?"),
    ("భోజనం తయారుగా ఉందా?", "అన్నం సిద్ధమా?"),
    ("మీరు ఏమి తింటారు?", "మీకు ఏమి కావాలి తినడానికి?"),
    ("మంచి రెస్టారెంట్ ఎక్కడ?", "దగ్గరలో మంచి హోటల్ ఉందా?"),
    ("కాఫీ దొరుకుతుందా?", "ఒక కాఫీ ఇస్తారా?"),
    ("ఇవాళ వంట ఏమిటి?", "ఈ రోజు ఏమి వండారు?"),
    ("దోసె ఎంత?", "ఒక దోసె ఎన్ని రూపాయలు?"),
    ("శాకాహార భోజనం ఉందా?", "వెజ్ భోజనం దొరుకుతుందా?"),
    ("కొంచెం నీళ్ళు ఇవ్వండి", "తాగడానికి నీళ్ళు ఉన్నాయా?"),
    ("మీకు ఏ పండు ఇష్టం?", "మీ ఇష్టమైన పండు ఏమిటి?"),
    ("మీ ఇంట్లో ఎంత మంది ఉన్నారు?", "మీ కుటుంబంలో ఎంత మంది ఉన్నారు?"),
    ("అమ్మ ఎలా ఉన్నారు?", "మీ అమ్మగారు బాగున్నారా?"),
    ("మీకు ఎంత మంది పిల్లలు?", "పిల్లలు ఉన్నారా మీకు?"),
    ("మీ నాన్నగారు ఏమి పని చేస్తారు?", "నాన్న ఉద్యోగం ఏమిటి?"),
    ("అన్నయ్య ఎక్కడ ఉంటారు?", "మీ అన్నయ్య ఏ ఊరిలో ఉంటారు?"),
    ("మీకు వివాహం అయిందా?", "పెళ్ళి అయిందా మీకు?"),
    ("చెల్లెలు ఏమి చదువుతోంది?", "మీ చెల్లి చదువు ఏమిటి?"),
    ("నాకు ఒక సహాయం కావాలి", "మీరు నాకు సహాయం చేయగలరా?"),
    ("అత్యవసర పరిస్థితి, సహాయం కావాలి", "త్వరగా రండి, అత్యవసరం"),
    ("నా సెల్ ఫోన్ పోయింది", "నా మొబైల్ పోయింది"),
    ("నాకు ఒంట్లో బాగాలేదు", "నాకు జ్వరంగా ఉంది"),
    ("నా సంచి కనిపించడం లేదు", "నా బ్యాగ్ పోయింది"),
    ("టికెట్ ఎక్కడ బుక్ చేయాలి?", "టికెట్ బుకింగ్ ఎలా?"),
    ("నేను దారి తప్పిపోయాను", "నాకు దారి చూపించండి"),
    ("డబ్బు ఎక్కడ మార్చుకోవచ్చు?", "కరెన్సీ ఎక్కడ మారుస్తారు?"),
    ("ఇంటర్నెట్ రావడం లేదు", "వైఫై పని చేయడం లేదు"),
)
assert len(PHRASINGS) == len(QA_PAIRS)

HELD_OUT_PHRASING = 2  # the index of the phrasing that training never hears
N_PHRASINGS = 3

# Out-of-domain: what a caller may say that the product has no answer for. The reply is
# FALLBACK. Training hears OOD_TRAIN only; OOD_TEST measures the fallback on new sentences.
FALLBACK = "క్షమించండి, మళ్ళీ చెప్పండి"
OOD_TRAIN: tuple[str, ...] = (
    "నేను నిన్న సినిమాకు వెళ్ళాను",
    "మా ఊరిలో పెద్ద చెరువు ఉంది",
    "క్రికెట్ మ్యాచ్ ఎవరు గెలిచారు?",
    "ఆ పుస్తకం చాలా బాగుంది",
    "నేను రేపు ఉదయం",
    "మా కుక్క పేరు టామీ",
    "కంప్యూటర్ ఎలా పని చేస్తుంది?",
    "ఆకాశం నీలంగా ఉంది",
    "నాకు పాటలు పాడటం ఇష్టం",
    "పెట్రోల్ ధర పెరిగింది",
    "ఎన్నికలు ఎప్పుడు జరుగుతాయి?",
    "ఆ తర్వాత మేము",
    "చంద్రుడు ఎంత దూరంలో ఉన్నాడు?",
    "నా స్నేహితుడు అమెరికాలో ఉన్నాడు",
    "పిల్లి పాలు తాగింది",
    "గణితం చాలా కష్టం",
    "ఈ చొక్కా రంగు ఏమిటి?",
    "మేము పండుగకు ఊరు వెళ్తున్నాం",
    "ఏనుగు పెద్ద జంతువు",
    "అదేంటంటే",
    "రాజమండ్రి గోదావరి ఒడ్డున ఉంది",
    "నేను టీ తాగను",
    "మీ కారు ఏ కంపెనీ?",
    "సముద్రంలో అలలు ఎక్కువ",
    "ఆ సినిమా హీరో ఎవరు?",
    "పుస్తకాలు బల్ల మీద ఉన్నాయి",
    "ఎందుకంటే నేను",
    "మొక్కలకు నీళ్ళు పోయాలి",
)
OOD_TEST: tuple[str, ...] = (
    "సూర్యుడు తూర్పున ఉదయిస్తాడు",
    "నా కలం ఎక్కడ పెట్టాను",
    "వచ్చే వారం పరీక్షలు",
    "పులి అడవిలో ఉంటుంది",
    "మా అమ్మమ్మ కథలు చెబుతుంది",
    "ఈ రోడ్డు చాలా పాతది",
    "ఆ పాట ఎవరు పాడారు?",
    "నేను కొంచెం",
    "రేపు క్రికెట్ ఆడదాం",
    "కిటికీ తెరవండి",
    "లైబ్రరీలో నిశ్శబ్దంగా ఉండాలి",
    "ఈ పండ్లు తాజాగా ఉన్నాయి",
)


NAMES: tuple[str, ...] = ("రాము", "సీత", "కృష్ణ", "అనిత", "వెంకట్", "పద్మ", "సురేష్", "గీత")

INTRO_PHRASINGS: tuple[str, ...] = ("నా పేరు {name}", "నేను {name}", "నన్ను {name} అని పిలుస్తారు")
RECALL_PHRASINGS: tuple[str, ...] = ("నా పేరు ఏమిటి?", "నా పేరు మీకు గుర్తుందా?", "నా పేరు చెప్పగలరా?")
NAME_QUESTION = RECALL_PHRASINGS[0]


def name_intro(name: str, phrasing: int = 0) -> tuple[str, str]:
    return INTRO_PHRASINGS[phrasing].format(name=name), f"నమస్కారం {name} గారు"


def name_answer(name: str) -> str:
    return f"మీ పేరు {name}"


@dataclass(frozen=True)
class Utterance:
    """One thing a caller can say: an intent in one phrasing."""

    intent: str  # "qa07", "intro:<name>", "recall", "ood"
    kind: str  # "qa" | "name_intro" | "name_recall" | "ood"
    topic: str
    phrasing: int  # 0..N_PHRASINGS-1 (OOD sentences: 0)
    text: str
    reply: str  # "" for a recall: its reply depends on the context

    @property
    def held_out_phrasing(self) -> bool:
        return self.kind != "ood" and self.phrasing == HELD_OUT_PHRASING


def utterances(split: str) -> list[Utterance]:
    """What callers say in a split: training gets every phrasing but the held-out one and the
    OOD_TRAIN sentences; the test (and val) splits get every phrasing and OOD_TEST."""
    held = split != "train"
    out: list[Utterance] = []
    for i, ((topic, q, a), more) in enumerate(zip(QA_PAIRS, PHRASINGS)):
        for p, text in enumerate((q, *more)):
            if held or p != HELD_OUT_PHRASING:
                out.append(Utterance(f"qa{i:02d}", "qa", topic, p, text, a))
    for name in NAMES:
        for p in range(N_PHRASINGS):
            if held or p != HELD_OUT_PHRASING:
                text, reply = name_intro(name, p)
                out.append(Utterance(f"intro:{name}", "name_intro", "name", p, text, reply))
    for p, text in enumerate(RECALL_PHRASINGS):
        if held or p != HELD_OUT_PHRASING:
            out.append(Utterance("recall", "name_recall", "name", p, text, ""))
    for text in OOD_TEST if held else OOD_TRAIN:
        out.append(Utterance("ood", "ood", "ood", 0, text, FALLBACK))
    return out


def all_reply_texts() -> list[str]:
    """Every reply the model may give (each unique): the QA answers, the name greetings and
    recalls, and the fallback."""
    texts = [a for _, _, a in QA_PAIRS]
    for name in NAMES:
        texts += [name_intro(name)[1], name_answer(name)]
    return [*texts, FALLBACK]


def reply_classes() -> dict[str, int]:
    """Reply text -> class index (the training-only auxiliary head predicts it)."""
    return {t: i for i, t in enumerate(all_reply_texts())}


@functools.cache
def intent_classes() -> dict[str, int]:
    """Intent -> class index: what a user turn says, heard alone (the training-only head of
    the model's listener predicts it): every question, every name introduction, the recall
    question and out-of-domain."""
    intents = [f"qa{i:02d}" for i in range(len(QA_PAIRS))] + [f"intro:{n}" for n in NAMES] + ["recall", "ood"]
    return {t: i for i, t in enumerate(intents)}


def corpus_digest() -> str:
    blob = json.dumps(
        {
            "qa": QA_PAIRS,
            "phrasings": PHRASINGS,
            "names": NAMES,
            "intro": INTRO_PHRASINGS,
            "recall": RECALL_PHRASINGS,
            "ood": [OOD_TRAIN, OOD_TEST],
            "fallback": FALLBACK,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DialogueTurn:
    utterance: Utterance
    reply: str  # the right reply (a recall's names the name introduced at `depends_on`)
    depends_on: int = -1  # a recall: the index of the introduction it answers


def compose_dialogues(
    rng: random.Random,
    utts: list[Utterance],
    n_dialogues: int,
    min_turns: int = 3,
    max_turns: int = 5,
    recall_share: float = 0.6,
    ood_share: float = 0.15,
) -> list[list[DialogueTurn]]:
    """Dialogues composed at random from `utts`: any questions in any order, out-of-domain turns
    among them, and (in `recall_share` of them) a name introduction at a random position with
    its recall at a random later position, unrelated turns in between."""
    qa = [u for u in utts if u.kind == "qa"]
    ood = [u for u in utts if u.kind == "ood"]
    intros = [u for u in utts if u.kind == "name_intro"]
    recalls = [u for u in utts if u.kind == "name_recall"]
    out: list[list[DialogueTurn]] = []
    for _ in range(n_dialogues):
        n = rng.randint(min_turns, max_turns)
        turns: list[DialogueTurn | None] = [None] * n
        if recalls and intros and rng.random() < recall_share and n >= 2:
            i = rng.randrange(0, n - 1)
            j = rng.randrange(i + 1, n)
            intro = rng.choice(intros)
            name = intro.intent.split(":", 1)[1]
            turns[i] = DialogueTurn(intro, intro.reply)
            turns[j] = DialogueTurn(rng.choice(recalls), name_answer(name), depends_on=i)
        used: set[str] = set()
        for k in range(n):
            if turns[k] is None:
                pool = ood if ood and rng.random() < ood_share else qa
                u = rng.choice(pool)
                while u.kind == "qa" and u.intent in used:
                    u = rng.choice(pool)
                used.add(u.intent)
                turns[k] = DialogueTurn(u, u.reply)
        out.append([t for t in turns if t is not None])
    return out
