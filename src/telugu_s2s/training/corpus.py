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


# `data synth --more-sentences N`: what training hears beyond the sentences above, N clips per
# training caller each. Every text here was written apart from the test's texts: none equals,
# contains or sits inside a held-out phrasing or an OOD_TEST sentence (unit-tested), and none
# repeats a held-out phrasing's wording with a word swapped. The test split does not change.
# Two more phrasings per question, in QA_PAIRS order (phrasings 3 and 4).
MORE_PHRASINGS: tuple[tuple[str, str], ...] = (
    ("నమస్కారమండీ", "అందరికీ నమస్కారం"),
    ("మీరు క్షేమమేనా?", "ఏమండీ, ఎలా ఉన్నారు?"),
    ("అందరికీ శుభోదయం", "మీకు శుభోదయం"),
    ("ఇక పడుకుంటాను, శుభ రాత్రి", "మీకు శుభ రాత్రి"),
    ("నాతో మాట్లాడుతున్నది ఎవరు?", "మీరు ఎవరో తెలుసుకోవచ్చా?"),
    ("మీకు కృతజ్ఞతలు", "ధన్యవాదాలు అండీ"),
    ("నేను బయలుదేరుతాను", "నేను వెళ్ళి వస్తాను"),
    ("మీ సొంత ఊరు ఏది?", "మీరు ఏ ఊరి వారు?"),
    ("మీకు తెలుగు తెలుసా?", "తెలుగు అర్థమవుతుందా?"),
    ("బాగానే ఉన్నారా?", "బాగున్నారా అండీ?"),
    ("సమయం ఎంత అయింది?", "ఇప్పుడు టైమెంత?"),
    ("నేడు ఏ వారం?", "ఈ రోజు వారం ఏది?"),
    ("నేటి తేదీ ఏమిటి?", "తేదీ ఎంత ఈ రోజు?"),
    ("బ్యాంకు ఎప్పటి నుండి పని చేస్తుంది?", "బ్యాంకు ఉదయం ఎప్పుడు మొదలవుతుంది?"),
    ("షాపు ఎన్ని గంటలకు మూసేస్తారు?", "షాపు మూసే సమయం ఏది?"),
    ("రైలు రావడానికి ఎంత సేపు?", "రైలు ఇంకా రాలేదా?"),
    ("బస్సు కోసం ఎంత సేపు ఆగాలి?", "బస్సు ఎప్పుడొస్తుంది?"),
    ("మనం ఏ నెలలో ఉన్నాం?", "ఇప్పుడు ఏ మాసం?"),
    ("రేపు సెలవు దినమా?", "రేపు సెలవు ఇచ్చారా?"),
    ("మీటింగ్ ఏ సమయానికి?", "మీటింగ్ ఎన్ని గంటలకు మొదలవుతుంది?"),
    ("నేడు వాతావరణం ఎలా ఉంది?", "వాతావరణం ఎలా ఉందండీ?"),
    ("వాన వచ్చే అవకాశం ఉందా?", "వర్షం వచ్చేలా ఉందా?"),
    ("ఇవాళ చలి ఉందా?", "చలి వేస్తోందా?"),
    ("రేపు వాతావరణం ఎలా ఉండబోతోంది?", "రేపు ఎలా ఉంటుంది వాతావరణం?"),
    ("గొడుగు అవసరమా?", "గొడుగు పట్టుకెళ్ళాలా?"),
    ("వేడి ఎన్ని డిగ్రీలు?", "ఎంత వేడిగా ఉంది?"),
    ("ఈదురు గాలి ఉందా?", "గాలి గట్టిగా వీస్తోందా?"),
    ("ఎండాకాలం ఎప్పుడు మొదలు?", "ఎండలు ఎప్పుడు మొదలవుతాయి?"),
    ("రైల్వే స్టేషన్ ఏ వైపు?", "స్టేషన్ కి ఎటు వెళ్ళాలి?"),
    ("దవాఖానా ఎక్కడ ఉంది?", "ఆసుపత్రికి దారి చెప్పండి"),
    ("బస్ స్టేషన్ ఎంత దూరంలో ఉంది?", "బస్ స్టాండ్ దగ్గరేనా?"),
    ("ఈ చుట్టుపక్కల బ్యాంకు ఉందా?", "బ్యాంకు దగ్గరలో ఉందా?"),
    ("ఎయిర్పోర్ట్ కి ఎలా చేరుకోవాలి?", "విమానాశ్రయం ఎలా చేరాలి?"),
    ("కూరగాయల మార్కెట్ ఎక్కడ?", "మార్కెట్ కి దారి ఏది?"),
    ("పోస్ట్ ఆఫీస్ కి దారి చెప్పండి", "పోస్ట్ ఆఫీస్ దగ్గరలో ఉందా?"),
    ("నేను ఏ దారిలో వెళ్ళాలి?", "నేను ఏ దిశలో వెళ్ళాలి?"),
    ("అక్కడికి చాలా దూరం ఉంటుందా?", "చాలా దూరం నడవాలా?"),
    ("భోజనం రెడీనా?", "తినడానికి అంతా సిద్ధమేనా?"),
    ("తినడానికి ఏమి తెమ్మంటారు?", "మీకు ఏం తినాలనిపిస్తోంది?"),
    ("భోజనానికి మంచి హోటల్ ఏది?", "ఇక్కడ మంచి హోటల్ ఏది?"),
    ("కాఫీ తాగాలని ఉంది", "వేడి కాఫీ ఉందా?"),
    ("ఇవాళ భోజనంలో ఏమిటి?", "ఇవాళ కూర ఏమిటి?"),
    ("దోసె ఖరీదు ఎంత?", "దోసె రేటు ఎంత?"),
    ("మీ దగ్గర శాకాహారం ఉందా?", "శాకాహారం ఉంటుందా?"),
    ("దాహంగా ఉంది, నీళ్ళు కావాలి", "మంచి నీళ్ళు కావాలి"),
    ("మీరు ఏ పండు ఇష్టంగా తింటారు?", "మీకు నచ్చిన పండు ఏది?"),
    ("మీ ఇంట్లో మొత్తం ఎంత మంది?", "మీ ఇంట్లో ఎవరెవరు ఉన్నారు?"),
    ("మీ అమ్మ ఆరోగ్యం ఎలా ఉంది?", "మీ తల్లి గారు ఎలా ఉన్నారు?"),
    ("మీకు ఎందరు పిల్లలు?", "మీకు సంతానం ఉందా?"),
    ("మీ నాన్న ఏ పని చేస్తారు?", "మీ తండ్రి గారు ఏమి చేస్తారు?"),
    ("మీ అన్న ఎక్కడ నివసిస్తారు?", "మీ అన్నయ్య ఉండేది ఎక్కడ?"),
    ("మీరు పెళ్ళి చేసుకున్నారా?", "మీ పెళ్ళి అయిపోయిందా?"),
    ("మీ చెల్లెలు ఏ కోర్సు చదువుతుంది?", "మీ చెల్లెలు ఏం చదువుతోంది?"),
    ("నాకు కొంచెం సాయం కావాలి", "నాకు మీ సహాయం కావాలి"),
    ("ప్రమాదం జరిగింది, వెంటనే సహాయం చేయండి", "అత్యవసరంగా సహాయం కావాలి"),
    ("నా ఫోన్ ఎవరో దొంగిలించారు", "నా ఫోన్ కనిపించడం లేదు"),
    ("నాకు తలనొప్పిగా ఉంది", "నాకు నలతగా ఉంది"),
    ("నా సంచి ఎక్కడో పడిపోయింది", "నా బ్యాగ్ ఎక్కడుందో తెలియదు"),
    ("టికెట్ ఎలా కొనాలి?", "టికెట్లు ఎలా బుక్ చేసుకోవాలి?"),
    ("నాకు ఈ ఊరు కొత్త, దారి తెలియడం లేదు", "నాకు దారి అర్థం కావడం లేదు"),
    ("డాలర్లు ఎక్కడ మార్చాలి?", "డబ్బులు మార్చుకోవాలి, ఎక్కడ?"),
    ("నెట్ కనెక్షన్ లేదు", "ఇంటర్నెట్ ఆగిపోయింది"),
)
assert len(MORE_PHRASINGS) == len(QA_PAIRS)
MORE_INTRO_PHRASINGS: tuple[str, ...] = ("{name} నా పేరు", "నా పేరు {name} అండీ")
MORE_RECALL_PHRASINGS: tuple[str, ...] = ("నేను ఎవరో గుర్తుందా?", "నా పేరు ఏంటి?")
# More out-of-domain sentences: statements, questions and half sentences on other subjects,
# some with a word the product's questions use (రైలు, నీళ్ళు, బ్యాంకు, వర్షం, టికెట్...) so
# that a word alone does not make a question.
MORE_OOD_TRAIN: tuple[str, ...] = (
    "నేను ప్రతి రోజు యోగా చేస్తాను",
    "ఈ కూర చాలా కారంగా ఉంది",
    "మా బడిలో వంద మంది విద్యార్థులు ఉన్నారు",
    "ఆ చెట్టు మీద కోతులు ఉన్నాయి",
    "నాకు ఈత రాదు",
    "రేడియోలో వార్తలు వస్తున్నాయి",
    "ఆ బండి ఎవరిది?",
    "నేను పుస్తకం చదువుతున్నాను",
    "పిల్లలు ఆటలు ఆడుతున్నారు",
    "ఆవు గడ్డి తింటుంది",
    "నీకు చదరంగం ఆడటం వచ్చా?",
    "నా కళ్ళద్దాలు పగిలిపోయాయి",
    "ఈ సంవత్సరం పంట బాగా పండింది",
    "ఆ నది చాలా పొడవైనది",
    "మా గ్రామంలో విద్యుత్ లేదు",
    "నేను కొత్త చెప్పులు కొన్నాను",
    "ఆ అమ్మాయి బాగా నాట్యం చేస్తుంది",
    "ప్రపంచంలో ఎత్తైన పర్వతం ఏది?",
    "భూమి గుండ్రంగా ఉంటుంది",
    "నాకు గుర్రపు స్వారీ ఇష్టం",
    "మీరు ఎప్పుడైనా ఢిల్లీ వెళ్ళారా?",
    "ఆ దేవాలయం చాలా పురాతనమైనది",
    "నా సైకిల్ టైరు పంచర్ అయింది",
    "మాకు రెండు ఆవులు ఉన్నాయి",
    "ఈ గది చాలా చిన్నది",
    "మేము ఆదివారం సినిమాకు వెళ్తాం",
    "ఆ పక్షి పేరు ఏమిటి?",
    "నేను వంట నేర్చుకుంటున్నాను",
    "కరెంటు బిల్లు ఎక్కువ వచ్చింది",
    "తెలుగు సినిమాలు బాగుంటాయి",
    "వీధిలో చాలా ట్రాఫిక్ ఉంది",
    "ఆకులు పచ్చగా ఉన్నాయి",
    "నేను గిటార్ నేర్చుకోవాలి",
    "ఈ కథ ముగింపు బాగుంది",
    "అది నా తప్పు కాదు",
    "మీరు ఏ జట్టుకు మద్దతు ఇస్తారు?",
    "నాకు నిద్ర వస్తోంది",
    "కొత్త సినిమా ఎప్పుడు విడుదల అవుతుంది?",
    "ఇది ఎవరి ఇల్లు?",
    "చేపలు నీటిలో ఈదుతాయి",
    "ఆ భవనం చాలా ఎత్తుగా ఉంది",
    "మా పక్కింటి వాళ్ళు మంచివాళ్ళు",
    "నేను నిన్న రాత్రి కల కన్నాను",
    "రంగుల్లో నాకు ఎరుపు ఇష్టం",
    "గోడ మీద బొమ్మ ఉంది",
    "ఆ కుర్చీ విరిగిపోయింది",
    "సంగీతం మనసుకు హాయి",
    "మా ఆఫీసులో కొత్త మేనేజర్ వచ్చారు",
    "ఆ దుకాణంలో బట్టలు చౌక",
    "పాము అంటే నాకు భయం",
    "నేను రోజూ నడకకు వెళ్తాను",
    "ఈ నేల తడిగా ఉంది",
    "మీ అభిప్రాయం ఏమిటి?",
    "ఎవరు ముందు వచ్చారు?",
    "ఏం జరిగిందంటే",
    "నేను అనుకున్నది",
    "మరియు ఆ తర్వాత",
    "అయితే మనం",
    "కానీ నాకు",
    "ఒకవేళ అలా అయితే",
    "ఆ విషయం గురించి",
    "నిన్న మా ఇంట్లో",
    "సరే కానీ",
    "ఏమో తెలియదు మరి",
    "అంటే నా ఉద్దేశం",
    "ఇంకా ఒక విషయం",
    "చిలుక మాట్లాడుతుంది",
    "గాజు గ్లాసు పగిలింది",
    "నా గడియారం ఆగిపోయింది",
    "పెన్సిల్ ఎవరు తీసుకున్నారు?",
    "ఆ సినిమా మూడు గంటలు",
    "మా టీచర్ చాలా మంచివారు",
    "నేను కారు నడపగలను",
    "ఈ పువ్వు వాసన బాగుంది",
    "క్యాలెండర్ గోడ మీద ఉంది",
    "ఇంద్రధనుస్సులో ఏడు రంగులు",
    "నక్షత్రాలు మెరుస్తున్నాయి",
    "ఈ కంప్యూటర్ చాలా నెమ్మదిగా ఉంది",
    "మీకు ఏ ఆట ఇష్టం?",
    "ఆ ఊరిలో జాతర జరుగుతుంది",
    "నేను ఉత్తరం రాస్తున్నాను",
    "బల్లి గోడ మీద ఉంది",
    "నేను ఇంగ్లీష్ నేర్చుకుంటున్నాను",
    "ఈ ఫోటో ఎవరు తీశారు?",
    "వినాయక చవితి పండుగ వస్తోంది",
    "మా తమ్ముడికి క్రికెట్ ఇష్టం",
    "ఈ నీళ్ళు ఉప్పగా ఉన్నాయి",
    "రైలు ప్రయాణం నాకు ఇష్టం",
    "బ్యాంకులో ఉద్యోగం వచ్చింది",
    "వర్షంలో తడిసిపోయాను",
    "ఆ హోటల్ పేరు మర్చిపోయాను",
    "నా స్నేహితుడి పెళ్ళి వచ్చే నెల",
    "టికెట్ ధరలు పెరిగాయి",
    # Added later, after the sentences above (so their clips keep their ids): 132 more, with
    # more questions and requests the product has no answer for, some a word away from one it
    # has ("మీకు వంట వచ్చా?", "ఆ బ్యాగ్ ధర ఎంత?"), so that the fallback depends on every word.
    "నేను ఉదయాన్నే లేస్తాను",
    "మా ఇంటి ముందు వేప చెట్టు ఉంది",
    "ఆ పిల్లవాడు బాగా చదువుతాడు",
    "ఈ రోజు నేను ఆఫీసుకు సెలవు పెట్టాను",
    "మా అక్క బెంగళూరులో పని చేస్తుంది",
    "నాకు కొత్త ఉద్యోగం కావాలి",
    "ఆ సినిమా చాలా బోరుగా ఉంది",
    "నేను మా తాతయ్యను చూడటానికి వెళ్తున్నాను",
    "మా కాలనీలో నీటి సమస్య ఉంది",
    "పక్షులు ఆకాశంలో ఎగురుతున్నాయి",
    "ఈ పుస్తకంలో వంద పేజీలు ఉన్నాయి",
    "మా నాన్నమ్మ పల్లెటూరిలో ఉంటుంది",
    "నేను నా గది శుభ్రం చేశాను",
    "ఆ బస్సులో చాలా రద్దీ ఉంది",
    "మా బామ్మ చేసే పులిహోర బాగుంటుంది",
    "నేను ఫుట్బాల్ ఆడతాను",
    "ఆ వంతెన కొత్తగా కట్టారు",
    "మా ఊరిలో కోడి పందేలు జరుగుతాయి",
    "ఈ చీర చాలా అందంగా ఉంది",
    "నేను బంగారం కొనాలనుకుంటున్నాను",
    "పాలు విరిగిపోయాయి",
    "ఆ కొండ మీద గుడి ఉంది",
    "మా అబ్బాయి ఇంజనీరింగ్ చదువుతున్నాడు",
    "ఆ కుక్క రాత్రంతా మొరిగింది",
    "వంటగదిలో ఎలుక దూరింది",
    "నేను కొత్త ఫోన్ కొన్నాను",
    "మా ఇంటికి బంధువులు వచ్చారు",
    "ఆ హీరోయిన్ నటన బాగుంది",
    "పొలంలో వరి నాట్లు వేస్తున్నారు",
    "అరటిపళ్ళు డజను ఎంత?",
    "మీరు ఏ సినిమా చూశారు?",
    "మీకు ఎన్ని భాషలు వచ్చు?",
    "మీ ఆఫీసు ఎక్కడ?",
    "ఆ అబ్బాయి ఎందుకు ఏడుస్తున్నాడు?",
    "మీరు ఎప్పుడు నిద్రపోతారు?",
    "మీకు వంట వచ్చా?",
    "ఆ ఉత్తరం ఎవరు పంపారు?",
    "కూరగాయల ధరలు బాగా పెరిగాయి",
    "నేను ఈ మధ్య బరువు తగ్గాను",
    "ఆ ఆటలో ఎవరు ఓడిపోయారు?",
    "మా పెరట్లో మల్లె చెట్టు ఉంది",
    "ఆ పాప చాలా ముద్దుగా ఉంది",
    "టీవీలో ఏ ఛానల్ వస్తోంది?",
    "మేము వచ్చే నెల తిరుపతి వెళ్తాం",
    "ఆ గుడిలో ప్రసాదం బాగుంటుంది",
    "ఈ పరుపు చాలా మెత్తగా ఉంది",
    "తాజ్ మహల్ ఆగ్రాలో ఉంది",
    "హిమాలయాలు ఉత్తరాన ఉన్నాయి",
    "ఏనుగుకు తొండం ఉంటుంది",
    "మా అమ్మ ఊరగాయ పెట్టింది",
    "ఈ సబ్బు మంచి వాసన వస్తుంది",
    "నేను ప్రతి వారం గుడికి వెళ్తాను",
    "వాళ్ళు కొత్త ఇల్లు కట్టుకున్నారు",
    "నా బండిలో పెట్రోల్ అయిపోయింది",
    "ఆ జోక్ చాలా నవ్వు తెప్పించింది",
    "పిల్లలు గాలిపటాలు ఎగరేస్తున్నారు",
    "ఈ ఆపిల్ పుల్లగా ఉంది",
    "నేను చిన్నప్పుడు చాలా అల్లరి చేసేవాడిని",
    "అతను ఎప్పుడూ ఆలస్యంగా వస్తాడు",
    "ఆ సర్కస్ లో సింహం ఉంది",
    "నేను మా అత్తగారింటికి వెళ్తున్నాను",
    "ఈ బట్టలు ఉతకాలి",
    "మీ అబ్బాయి ఏ క్లాసు?",
    "ఈ చెరువులో తామర పూలు ఉన్నాయి",
    "నా కంప్యూటర్ కి వైరస్ వచ్చింది",
    "సూపర్ మార్కెట్ లో ఆఫర్లు ఉన్నాయి",
    "ఆ నటుడు రాజకీయాల్లోకి వచ్చాడు",
    "నేను నిన్న డాక్టర్ దగ్గరకు వెళ్ళాను",
    "ఈ రోజు మా పెళ్ళి రోజు",
    "ఆ మెట్లు ఎక్కడం కష్టం",
    "ఈ దారిలో చీకటిగా ఉంది",
    "మా అన్న కారు కొన్నాడు",
    "నేను మేడ మీద పడుకుంటాను",
    "ఆ సరస్సు చాలా లోతు",
    "తేనెటీగలు తేనె చేస్తాయి",
    "నువ్వు ఎందుకు నవ్వుతున్నావు?",
    "ఆ పెట్టెలో ఏముంది?",
    "ఎవరో తలుపు కొడుతున్నారు",
    "మా పాప మొదటి అడుగు వేసింది",
    "ఈ కాగితం మీద సంతకం పెట్టండి",
    "నాకు ఆకలిగా లేదు",
    "ఆ మామిడి తోట మాది",
    "పండుగ రోజు కొత్త బట్టలు వేసుకుంటాం",
    "బాతులు చెరువులో ఈదుతున్నాయి",
    "ఆ దొంగను పోలీసులు పట్టుకున్నారు",
    "ఇంకా చెప్పాలంటే",
    "నేను చెప్పేది ఏంటంటే",
    "అసలు విషయం",
    "మొన్న మేము",
    "అది కాదు కానీ",
    "ఒక్కసారి ఆలోచిస్తే",
    "ఆ రోజు సాయంత్రం",
    "మా అన్నయ్య ఏమో",
    "ఎప్పుడైతే",
    "నాకు తెలిసినంత వరకు",
    "వాళ్ళు అన్నారు కదా",
    "పోయిన సంవత్సరం",
    "మీకు చెప్పానా",
    "ఇది ఎలా అంటే",
    "అలా కాకుండా",
    "కొంచెం గట్టిగా మాట్లాడండి",
    "టీవీ సౌండ్ తగ్గించండి",
    "ఒక జోక్ చెప్పండి",
    "అమ్మకు ఫోన్ చేయి",
    "ఫ్యాన్ వేయండి",
    "ఆ సినిమా ఎన్ని రోజులు ఆడింది?",
    "పిల్లలు ఎక్కడ ఆడుకుంటున్నారు?",
    "మీకు ఏ రంగు ఇష్టం?",
    "ఆ పిల్లి ఎవరిది?",
    "మీ ఇంటి నంబర్ ఎంత?",
    "భారతదేశ రాజధాని ఏది?",
    "ఆ గుడి ఎప్పుడు కట్టారు?",
    "మీరు ఎప్పుడైనా విమానం ఎక్కారా?",
    "నెమలి ఎలా నాట్యం చేస్తుంది?",
    "ఆ చెట్టు వయసు ఎంత?",
    "ఎవరు ఫోన్ చేశారు?",
    "ఆ బ్యాగ్ ధర ఎంత?",
    "ఆ హోటల్ లో గదులు ఖాళీ లేవు",
    "మా ఆవిడ ఉద్యోగం చేస్తుంది",
    "నేను రోజూ పేపర్ చదువుతాను",
    "ఆ కంపెనీ షేర్ ధర పడిపోయింది",
    "రేపు మా ఇంట్లో పూజ ఉంది",
    "ఆ పల్లెటూరు చాలా ప్రశాంతంగా ఉంటుంది",
    "మా తాతగారు రైతు",
    "నేను మొక్కలు పెంచుతాను",
    "ఆ నగరంలో మెట్రో రైలు ఉంది",
    "చిన్న పిల్లలకు చాక్లెట్లు ఇష్టం",
    "నా పుట్టిన రోజు డిసెంబర్ లో",
    "మా ఇంట్లో ఏసీ లేదు",
    "ఆ కవి చాలా పుస్తకాలు రాశాడు",
    "కోడి గుడ్లు పెడుతుంది",
    "నేను బస్సు మిస్ అయ్యాను",
)


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
    OOD_TRAIN sentences; the test (and val) splits get every phrasing and OOD_TEST. (With
    `data synth --more-sentences`, training also hears `more_utterances()`.)"""
    held = split != "train"
    out: list[Utterance] = []
    for i, ((topic, q, a), others) in enumerate(zip(QA_PAIRS, PHRASINGS)):
        for p, text in enumerate((q, *others)):
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


def more_utterances() -> list[Utterance]:
    """The training-only sentences of `data synth --more-sentences`: phrasings 3 and 4 of every
    question, name introduction and recall, and MORE_OOD_TRAIN. Only ever appended to: a clip's
    id is its index here."""
    out: list[Utterance] = []
    first = N_PHRASINGS
    for i, ((topic, _, a), texts) in enumerate(zip(QA_PAIRS, MORE_PHRASINGS)):
        out += [Utterance(f"qa{i:02d}", "qa", topic, first + p, text, a) for p, text in enumerate(texts)]
    for name in NAMES:
        for p, form in enumerate(MORE_INTRO_PHRASINGS):
            out.append(
                Utterance(f"intro:{name}", "name_intro", "name", first + p, form.format(name=name), name_intro(name)[1])
            )
    out += [Utterance("recall", "name_recall", "name", first + p, t, "") for p, t in enumerate(MORE_RECALL_PHRASINGS)]
    out += [Utterance("ood", "ood", "ood", 0, text, FALLBACK) for text in MORE_OOD_TRAIN]
    return out


def more_digest() -> str:
    """What `--more-sentences` adds, as a short digest (it keys the corpus's data version)."""
    blob = json.dumps([[u.intent, u.phrasing, u.text] for u in more_utterances()], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _words(text: str) -> list[str]:
    return text.replace("?", " ").replace(",", " ").split()


def one_word_apart(a: str, b: str) -> bool:
    """Whether two sentences differ by at most one word: one swapped, added or dropped
    ("బయట వాతావరణం ఎలా ఉంది?" and "ఇవాళ వాతావరణం ఎలా ఉంది?")."""
    x, y = _words(a), _words(b)
    if not set(x) & set(y):  # one word each, or nothing shared: not the same wording
        return False
    if len(x) == len(y):
        return sum(u != v for u, v in zip(x, y)) <= 1
    if abs(len(x) - len(y)) != 1:
        return False
    short, long = (x, y) if len(x) < len(y) else (y, x)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@functools.cache
def _trained_texts() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for u in utterances("train") + more_utterances():
        out.setdefault(u.intent, []).append(u.text)
    return {k: tuple(v) for k, v in out.items()}


def near_a_trained_phrasing(intent: str, text: str) -> bool:
    """Whether a held-out phrasing is one word from a phrasing training hears for the same
    intent (with `--more-sentences`, as the shipped model is trained): the easy part of the
    held-out phrasings, reported apart from the rest."""
    return any(one_word_apart(text, t) for t in _trained_texts().get(intent, ()))


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
