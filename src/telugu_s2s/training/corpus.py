"""The Telugu conversational corpus: question -> answer pairs and name dialogues.

Answers are short on purpose (about one second of speech): the demo model has to learn
to answer with the right sentence in the right voice, on a 2-core CPU.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

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

NAMES: tuple[str, ...] = ("రాము", "సీత", "కృష్ణ", "అనిత", "వెంకట్", "పద్మ", "సురేష్", "గీత")

NAME_QUESTION = "నా పేరు ఏమిటి?"


def name_intro(name: str) -> tuple[str, str]:
    return f"నా పేరు {name}", f"నమస్కారం {name} గారు"


def name_answer(name: str) -> str:
    return f"మీ పేరు {name}"


@dataclass(frozen=True)
class Turn:
    user_text: str
    reply_text: str
    kind: str  # "qa" | "name_intro" | "name_recall"
    topic: str
    # name_recall turns: the reply depends on this earlier turn index
    depends_on: int = -1


@dataclass(frozen=True)
class Script:
    script_id: str
    turns: tuple[Turn, ...]


def build_scripts(seed: int = 0, qa_turns_per_dialogue: int = 4) -> list[Script]:
    """Dialogues as sequences of turns. Deterministic for a given seed.

    - QA dialogues: every pair exactly once, grouped `qa_turns_per_dialogue` to a dialogue.
    - Name dialogues (one per name): "నా పేరు X", two unrelated questions, then
      "నా పేరు ఏమిటి?" whose right answer "మీ పేరు X" depends on the first turn.
    """
    rng = random.Random(seed)
    qa = [Turn(q, a, "qa", topic) for topic, q, a in QA_PAIRS]
    order = list(range(len(qa)))
    rng.shuffle(order)
    scripts: list[Script] = []
    for i in range(0, len(order), qa_turns_per_dialogue):
        turns = tuple(qa[j] for j in order[i : i + qa_turns_per_dialogue])
        scripts.append(Script(f"qa{i // qa_turns_per_dialogue:02d}", turns))
    for n, name in enumerate(NAMES):
        q, a = name_intro(name)
        fillers = rng.sample(qa, 2)
        turns = (
            Turn(q, a, "name_intro", "name"),
            fillers[0],
            fillers[1],
            Turn(NAME_QUESTION, name_answer(name), "name_recall", "name", depends_on=0),
        )
        scripts.append(Script(f"name{n:02d}", turns))
    return scripts


def all_reply_texts() -> list[str]:
    texts = [a for _, _, a in QA_PAIRS]
    for name in NAMES:
        texts += [name_intro(name)[1], name_answer(name)]
    return texts


def corpus_digest() -> str:
    blob = json.dumps(
        {"qa": QA_PAIRS, "names": NAMES, "q": NAME_QUESTION, "scripts": [asdict(s) for s in build_scripts()]},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
