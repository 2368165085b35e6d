"""Forum threads with graded comments (samples of 2017 T3, subtask A).

Each thread asks a question on one topic. Comments are graded from their text:

* Good: answers the question with concrete, topic-specific information (places, steps, prices);
* PotentiallyUseful: on topic but vague or hedged ("not sure", "maybe ask");
* Bad: off-topic chatter, thanks, jokes, or a new question.
"""

from __future__ import annotations

import random

from mtpeft.tasks.document import Candidate, Document

TOPICS: dict[str, dict[str, list[str] | str]] = {
    "license": {
        "category": "Driving",
        "subject": ["How to get a driving license?", "Converting my foreign driving license", "Driving school advice"],
        "body": ["I just moved here and want to drive. What do I need to get a local license?",
                 "Can I convert my license from home or do I have to take the full test?"],
        "good": ["Go to the traffic department with your passport, residence card and two photos; the eye test is done there.",
                 "If your license is from an approved country you only need the eye test and a {price} fee.",
                 "Book lessons at the driving school near the ring road, about {n} classes before the road test."],
        "vague": ["I think it depends on your nationality, better check with someone.",
                  "Not sure about the license rules now, they change every year."],
    },
    "bank": {
        "category": "Money",
        "subject": ["Which bank for a salary account?", "Opening a bank account", "Best bank for transfers home"],
        "body": ["I need to open an account for my salary. Which bank has low fees?",
                 "What documents do banks ask for when you open a new account?"],
        "good": ["Bring your passport, residence card and a salary letter; the account was open in {n} days.",
                 "The national bank has no monthly fee if your salary is above {price}, and online transfers are free.",
                 "For transfers home the exchange house in the mall gives better rates than the bank counter."],
        "vague": ["All banks are more or less the same, maybe ask your HR.",
                  "I heard some banks are good but I do not remember which one."],
    },
    "school": {
        "category": "Education",
        "subject": ["Good schools for a 7 year old?", "School fees this year", "British or American school?"],
        "body": ["We are moving with two kids. Which schools have places and what are the fees?",
                 "Is it better to choose a British or an American curriculum school?"],
        "good": ["The international school on the north side has places; fees are about {price} a term plus the bus.",
                 "Apply early in March, bring report cards and vaccination records; the entrance test takes one morning.",
                 "The American school follows grades and AP courses, the British one IGCSE; both cost around {price}."],
        "vague": ["Depends on what you want for your kids, every family is different.",
                  "Schools are expensive everywhere, maybe look online."],
    },
    "rent": {
        "category": "Housing",
        "subject": ["Rent for a two bedroom flat?", "Looking for an apartment", "Is the rent negotiable?"],
        "body": ["How much is the rent for a two bedroom flat near the center?",
                 "Any advice on finding an apartment without paying an agent?"],
        "good": ["A two bedroom flat near the center costs about {price} a month with water and power included.",
                 "Check the classifieds website and call landlords directly; most ask for {n} cheques in advance.",
                 "Rent is negotiable if you pay six months upfront; we got ten percent off that way."],
        "vague": ["Prices went up a lot, good luck with that.",
                  "Maybe try an agent, some are ok and some are not."],
    },
    "doctor": {
        "category": "Health",
        "subject": ["Good dentist?", "Where to see a doctor on the weekend?", "Health card renewal"],
        "body": ["I need a dentist who is not too expensive. Any recommendations?",
                 "Which clinic is open on Friday if my child gets sick?"],
        "good": ["The health center in the west district opens on Friday from {n} pm; bring the health card.",
                 "The dental clinic near the museum charges {price} for a cleaning and takes walk ins.",
                 "Renew the health card online with your residence number; it costs {price} per year."],
        "vague": ["I went to a clinic once, it was fine I guess.",
                  "Ask at your company, maybe they have insurance for that."],
    },
    "internet": {
        "category": "Technology",
        "subject": ["Home internet provider?", "Fiber internet speed", "Cancel internet contract"],
        "body": ["Which provider gives the best home internet for the price?",
                 "Is fiber available in the older buildings and how fast is it?"],
        "good": ["Fiber plans start at {price} a month for 100 Mbps; installation took {n} days for us.",
                 "Call the provider hotline with your building number; they check fiber coverage in a minute.",
                 "To cancel you must return the router at the shop and pay the last month; no penalty after one year."],
        "vague": ["Internet is slow everywhere in the evening, nothing to do.",
                  "Not sure, I use my phone data mostly."],
    },
}  # fmt: skip
BAD = [
    "Thanks for asking, I was wondering the same thing.", "lol this forum never changes", "Where are you from?",
    "Welcome to the city! You will love the weather in winter.", "Has anyone seen the new mall yet?",
    "Good morning everyone :)", "Why do people always ask the same question?", "Anyone up for football on Friday?",
    "I miss home food so much.", "Haha nice one.", "Please use the search button before posting.",
    "Happy holidays to all members!",
]  # fmt: skip
NAMES = ["sandbird", "doha_dave", "mira22", "expat_joe", "greenleaf", "falconeye", "lina_k", "oldtimer", "rafiq", "zed"]


def _pick(topic: dict[str, list[str] | str], key: str, rng: random.Random) -> str:
    choices = topic[key]
    assert isinstance(choices, list)
    return rng.choice(choices).format(price=f"{rng.randint(2, 40) * 100} QR", n=rng.randint(2, 12))


def make_thread(qid: str, rng: random.Random) -> Document:
    """One thread: question plus 6-10 comments with a mix of Good, PotentiallyUseful and Bad."""
    name = rng.choice(sorted(TOPICS))
    topic = TOPICS[name]
    subject, body = _pick(topic, "subject", rng), _pick(topic, "body", rng)
    day = f"201{rng.randint(3, 6)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"
    attributes = {
        "subject": subject, "body": body, "category": str(topic["category"]), "Thread@THREAD_SEQUENCE": qid,
        "RelQuestion@RELQ_DATE": f"{day} 09:00:00", "RelQuestion@RELQ_USERID": f"U{rng.randint(1, 999)}",
        "RelQuestion@RELQ_USERNAME": rng.choice(NAMES),
    }  # fmt: skip
    doc = Document(id=qid, text=subject + "\n" + body, attributes=attributes)
    count = rng.randint(6, 10)
    labels = rng.choices(["Good", "PotentiallyUseful", "Bad"], weights=[4, 2, 4], k=count)
    for index, label in enumerate(labels, start=1):
        if label == "Good":
            text = _pick(topic, "good", rng)
        elif label == "PotentiallyUseful":
            text = _pick(topic, "vague", rng)
        else:
            text = rng.choice(BAD)
        user = rng.choice(NAMES)
        comment_attributes = {"RELC_DATE": f"{day} {9 + index:02d}:{rng.randint(10, 59)}:00",
                              "RELC_USERID": f"U{rng.randint(1, 999)}", "RELC_USERNAME": user}  # fmt: skip
        doc.candidates.append(Candidate(id=f"{qid}_C{index}", text=text, label=label, attributes=comment_attributes))
    return doc


def make_documents(rng: random.Random, n: int, split: str) -> list[Document]:
    """``n`` threads with ids ``Q<n>_R<m>`` as in the Qatar Living files."""
    offset = {"train": 100, "dev": 500}[split]
    return [make_thread(f"Q{offset + index}_R{rng.randint(1, 60)}", rng) for index in range(n)]
