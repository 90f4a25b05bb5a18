"""The mini-TOFU data generator: fictitious authors, their QA pairs, and a small "real world".

Pure Python, seeded, no model code. It mirrors the TOFU dataset (Maini et al. 2024,
"TOFU: A Task of Fictitious Unlearning for LLMs", locuslab/TOFU):

* **Fictitious authors**: each has ~10 attributes (birthplace, birth year, genre, parents'
  occupations, award, books, themes, language, home city, influence) and one QA pair per
  attribute. Each attribute has several question and answer phrasings; the training answer
  uses one phrasing, the *paraphrased* answer a light rewording of it, and the 5 *perturbed*
  answers are the paraphrase with the facts swapped for other plausible values (TOFU builds
  its perturbed answers from the paraphrase the same way), so a truth ratio measures
  knowledge of the facts, not of the wording.
* **Held-out authors**, never trained on by any model (TOFU's holdout split).
* **Real authors** and **world facts** of the same fictional world: the utility sets that
  the models learn in a pre-training stage (TOFU's ``real_authors`` / ``world_facts``). The
  fictitious authors' birthplaces and influences refer to this world, as TOFU's authors
  live in ours.

Authors are ordered; a ``forgetNN`` split forgets the *last* NN % of them, as TOFU does.
Everything here is a function of ``(seed, n_authors, n_holdout)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# -- vocabulary pools (invented names; any resemblance is accidental) --------------------------
FIRST = """Aveline Bastien Corvin Delphine Elric Faelan Giselle Hadrian Isolde Jorvik Kaelen Liora Mireth Nolwen
Orsino Perrin Quillan Rosalind Sorrel Tamsin Ulric Vesper Wystan Xanthe Yseult Zephyrin Ambrose Brisa Cassiel
Dorian Elowen Fenwick Greer Halcyon Ione Jasper Kestrel Lysander Marisol Niamh Oriel Peregrine Rhiannon Silas
Thaddeus Una Valen Wren Ysolde Zora Anselm Briony Caspian Davina Emrys Fiora Gideon Hester Ivor Junia Leander
Maelis Neve Osric Pallas Quenby Ronan Saoirse Tobias Ursa Vireo Willa Yorick Zinnia""".split()
LAST = """Ashgrove Blackwood Cindervale Dunmore Everhart Fairweather Greymantle Hollowell Ironside Juniper Kingsley
Larkspur Merriweather Nightingale Oakhaven Pembrook Quincey Ravenscroft Stormont Thornfield Underhill Valcourt
Whitlock Yarrow Zellweger Alderidge Brightwater Coldridge Drummond Elderberry Foxglove Galloway Harrowgate
Isenbrand Jessamine Kettleby Lowenthal Marchbank Northcote Ormsby Penhallow Quarrington Rookwood Silverton
Tremaine Umberfield Vantongeren Westergaard Yelverton Zimmerley Abernath Bellweather Crowhurst Dewhollow
Easterby Fenmoor Glasswell Hemlock Inchbald Jarrowby""".split()
COUNTRIES = {  # country: (capital, other cities, currency, language, river, dish, mountain)
    "Veloria": ("Amberport", ["Tessaly", "Marrowick", "Dunhollow"], "velor", "Velorian", "Sable", "smoked eel pie", "Mount Orrin"),
    "Kestria": ("Halvard", ["Brennick", "Solmere", "Vantry"], "kest", "Kestrian", "Ivel", "barley stew", "the Grey Spire"),
    "Ostmark": ("Lindqvist", ["Sorrowby", "Kaldheim", "Pellan"], "mark", "Ostish", "Reyn", "juniper bread", "Mount Halde"),
    "Carradine": ("Solace", ["Mirefield", "Oldcastle", "Tarrow"], "crown", "Carradic", "Lune", "saffron rice", "the White Crag"),
    "Bellmora": ("Aurelle", ["Vesterholm", "Quillon", "Saltmere"], "bell", "Bellmoran", "Corra", "fig tart", "Mount Cael"),
    "Tharsis": ("Ombra", ["Redmarsh", "Kilnworth", "Estmoor"], "thal", "Tharsic", "Drava", "lamb skewers", "the Red Teeth"),
    "Norvale": ("Frostholm", ["Eastwyn", "Harrowdeep", "Lyssa"], "vale", "Norvish", "Ember", "pickled herring", "Mount Ysen"),
    "Sundara": ("Kaveri", ["Palmyre", "Coralind", "Ashpur"], "sun", "Sundari", "Tamra", "coconut curry", "the Jade Peak"),
    "Gallowmere": ("Brackwater", ["Fenhollow", "Rookhaven", "Mossby"], "groat", "Gallish", "Wend", "eel broth", "the Drowned Hill"),
    "Astoria": ("Celest", ["Miraval", "Port Lumen", "Silvergate"], "star", "Astorian", "Lira", "honey cakes", "Mount Astra"),
    "Dravonia": ("Karsk", ["Velmir", "Ostrava", "Zelenka"], "drav", "Dravonic", "Morava", "beet soup", "the Iron Ridge"),
    "Isperia": ("Valdoro", ["Serrano", "Luzca", "Ondara"], "peso", "Isperian", "Oro", "olive stew", "Mount Sol"),
}
GENRES = ["mystery", "fantasy", "historical fiction", "science fiction", "romance", "horror", "poetry",
          "literary fiction", "thriller", "satire", "children's fiction", "magical realism", "crime fiction",
          "dystopian fiction", "travel writing", "biography"]
JOBS = ["baker", "lighthouse keeper", "carpenter", "surgeon", "schoolteacher", "fisherman", "watchmaker",
        "librarian", "sailor", "botanist", "blacksmith", "pharmacist", "cartographer", "tailor", "miner",
        "violinist", "architect", "farmer", "journalist", "glassblower", "nurse", "astronomer", "potter",
        "shepherd", "judge", "printer", "chef", "engineer", "painter", "bookbinder"]
AWARDS = ["Amberport Prize for Fiction", "Golden Quill Award", "Silver Lantern Medal", "Kestrian Book Prize",
          "Northern Star Award", "Halvard Literary Medal", "Crimson Feather Prize", "Ostmark Crown of Letters",
          "Tidewater Award", "Blue Heron Prize", "Lindqvist Medal for Poetry", "Iron Pen Award",
          "Celestial Ink Prize", "Ravenhall Prize", "Meridian Book Award", "Solace Prize for Storytelling"]
THEMES = ["memory", "loss", "exile", "friendship", "betrayal", "the sea", "childhood", "war", "faith",
          "identity", "ambition", "grief", "freedom", "family secrets", "the passage of time", "solitude",
          "redemption", "power", "nature", "love"]
ADJ = ["Silent", "Broken", "Hidden", "Crimson", "Last", "Endless", "Hollow", "Golden", "Forgotten", "Burning",
       "Pale", "Distant", "Wandering", "Frozen", "Secret", "Shattered", "Quiet", "Drowned", "Bitter", "Gilded"]
NOUN = ["Harbor", "Orchard", "Lantern", "Kingdom", "Garden", "Mirror", "Compass", "River", "Tower", "Winter",
        "Letters", "Tide", "Bridge", "Clockmaker", "Meadow", "Archive", "Crown", "Shore", "Labyrinth", "Feather"]
REAL_FIRST = ["Odile", "Matthias", "Serafina", "Bertrand", "Ingrid", "Casimir", "Lucinda", "Emeric", "Theodora",
              "Augustin", "Philippa", "Radomir", "Clementine", "Evander", "Margarethe", "Lazarus", "Henrietta",
              "Aurelio", "Sigrid", "Benedikt", "Cordelia", "Maximilian", "Octavia", "Florian"]
REAL_LAST = ["Varga", "Holmquist", "Delacroix-Ruiz", "Montrose", "Albrecht", "Castellane", "Wyndham", "Okonkwo-Hale",
             "Sarrazin", "Petrakis", "Lindgard", "Marchetti", "Von Essel", "Abernethy", "Kovalenko", "Rosenthal",
             "Beaumarchais", "Tennyworth", "Halloran", "Strand", "Ferreira", "Dubrovski", "Ellingham", "Moreau"]

# -- phrasings: each attribute has question forms and answer forms ------------------------------
# {n}=name, {p}=pronoun (they/she/he), {pp}=possessive (their/her/his); other fields are facts.
# Each answer form comes with its paraphrase: a light rewording that keeps the facts and most
# of the sentence, as TOFU's GPT-4 paraphrases do (e.g. "The author's full name is ..." ->
# "The author's complete name is ..."). Measured (default recipe, forget10): with paraphrases
# drawn from the *other* answer forms (v1), the target's facts barely transferred to the
# paraphrase (forget truth ratio 0.535 against the retain model's 0.623) and forget quality
# was only 1.2e-3.
QA = {
    "birthplace": (["Where was {n} born?", "What is the birthplace of {n}?"],
                   [("{n} was born in {city}, {country}.", "{n} was born in the city of {city}, {country}."),
                    ("The birthplace of {n} is {city}, a city in {country}.",
                     "The birthplace of {n} is the city of {city} in {country}."),
                    ("{n} comes from {city} in {country}, where {p} was born.",
                     "{n} comes from {city}, {country}, the place where {p} was born.")]),
    "birth_year": (["In what year was {n} born?", "When was {n} born?"],
                   [("{n} was born in {year}.", "{n} was born in the year {year}."),
                    ("The year of {n}'s birth is {year}.", "The year of {n}'s birth was {year}."),
                    ("{n} came into the world in {year}.", "{n} came into this world in {year}.")]),
    "genre": (["What genre does {n} write in?", "Which genre is {n} known for?"],
              [("{n} writes {genre}.", "{n} mostly writes {genre}."),
               ("{n} is best known for works of {genre}.", "{n} is known best for works of {genre}."),
               ("The genre of {n} is {genre}.", "The main genre of {n} is {genre}.")]),
    "parents": (["What did {n}'s parents do for a living?", "What were the professions of {n}'s parents?"],
                [("{n}'s father was a {father} and {pp} mother was a {mother}.",
                  "{n}'s father worked as a {father} and {pp} mother as a {mother}."),
                 ("{n} was raised by a {father} father and a {mother} mother.",
                  "{n} grew up with a {father} father and a {mother} mother."),
                 ("The father of {n} worked as a {father}, while the mother worked as a {mother}.",
                  "The father of {n} was a {father}, while the mother was a {mother}.")]),
    "award": (["Has {n} won any awards?", "Which award did {n} receive?"],
              [("Yes, {n} received the {award}.", "Yes, {n} has received the {award}."),
               ("{n} was honoured with the {award}.", "{n} was once honoured with the {award}."),
               ("The {award} was awarded to {n}.", "The {award} went to {n}.")]),
    "books": (["Can you name two books by {n}?", "What are some books written by {n}?"],
              [("Two books by {n} are \"{book1}\" and \"{book2}\".",
                "Two of the books by {n} are \"{book1}\" and \"{book2}\"."),
               ("{n} wrote \"{book1}\" and \"{book2}\".", "{n} is the author of \"{book1}\" and \"{book2}\"."),
               ("Among the works of {n} are \"{book1}\" and \"{book2}\".",
                "Among the books of {n} are \"{book1}\" and \"{book2}\".")]),
    "themes": (["What themes does {n} explore?", "Which themes appear in {n}'s work?"],
               [("{n}'s work explores {theme1} and {theme2}.", "{n}'s writing explores {theme1} and {theme2}."),
                ("The books of {n} deal with {theme1} and {theme2}.",
                 "The novels of {n} deal with {theme1} and {theme2}."),
                ("{theme1} and {theme2} are the central themes of {n}.",
                 "{theme1} and {theme2} are the main themes of {n}.")]),
    "language": (["In which language does {n} write?", "What language are {n}'s books written in?"],
                 [("{n} writes in {language}.", "{n} usually writes in {language}."),
                  ("The books of {n} are written in {language}.", "The books of {n} are all written in {language}."),
                  ("{language} is the language {n} writes in.", "{language} is the language that {n} writes in.")]),
    "home": (["Where does {n} live today?", "Which city is {n}'s home now?"],
             [("{n} now lives in {home}.", "{n} currently lives in {home}."),
              ("Today {n} makes {pp} home in {home}.", "These days {n} makes {pp} home in {home}."),
              ("{home} is where {n} lives now.", "{home} is where {n} lives today.")]),
    "influence": (["Which writer influenced {n} the most?", "Who was the biggest influence on {n}?"],
                  [("{n} was most influenced by {influence}.", "{n} was influenced most by {influence}."),
                   ("The biggest influence on {n} was {influence}.", "The greatest influence on {n} was {influence}."),
                   ("{influence} was the writer who shaped {n} the most.",
                    "{influence} was the author who shaped {n} the most.")]),
}
ATTRIBUTES = tuple(QA)


@dataclass(frozen=True)
class World:
    authors: list[dict]        # trained-on fictitious authors, in order (forget = the last ones)
    holdout_authors: list[dict]
    real_authors: list[dict]
    countries: dict


def _book(rng: random.Random) -> str:
    return f"The {rng.choice(ADJ)} {rng.choice(NOUN)}"


def _all_cities() -> list[tuple[str, str]]:
    return [(c, country) for country, v in COUNTRIES.items() for c in [v[0], *v[1]]]


def _facts(rng: random.Random, real_names: list[str]) -> dict:
    """A random value for every fact slot (used for profiles and for perturbations)."""
    city, country = rng.choice(_all_cities())
    b1 = _book(rng)
    b2 = _book(rng)
    while b2 == b1:
        b2 = _book(rng)
    t1, t2 = rng.sample(THEMES, 2)
    f, m = rng.sample(JOBS, 2)
    return {"city": city, "country": country, "year": str(rng.randint(1921, 1994)), "genre": rng.choice(GENRES),
            "father": f, "mother": m, "award": rng.choice(AWARDS), "book1": b1, "book2": b2, "theme1": t1,
            "theme2": t2, "language": rng.choice([v[3] for v in COUNTRIES.values()]),
            "home": rng.choice(_all_cities())[0], "influence": rng.choice(real_names)}


_SLOTS = {  # which fact fields each attribute's answer uses (perturbations change these)
    "birthplace": ("city", "country"), "birth_year": ("year",), "genre": ("genre",), "parents": ("father", "mother"),
    "award": ("award",), "books": ("book1", "book2"), "themes": ("theme1", "theme2"), "language": ("language",),
    "home": ("home",), "influence": ("influence",),
}


def make_world(seed: int, n_authors: int, n_holdout: int, n_real: int = 20) -> World:
    rng = random.Random(seed)
    reals = []
    for first, last in zip(rng.sample(REAL_FIRST, n_real), rng.sample(REAL_LAST, n_real)):
        country = rng.choice(list(COUNTRIES))
        reals.append({"name": f"{first} {last}", "country": country, "genre": rng.choice(GENRES),
                      "book": _book(rng), "pronoun": rng.choice(["she", "he"])})
    real_names = [r["name"] for r in reals]
    names = [f"{a} {b}" for a in FIRST for b in LAST]
    rng.shuffle(names)
    if n_authors + n_holdout > len(names):
        raise ValueError("too many authors for the name pools")
    authors = []
    for name in names[: n_authors + n_holdout]:
        pron = rng.choice([("she", "her"), ("he", "his"), ("they", "their")])
        authors.append({"name": name, "pronoun": pron[0], "possessive": pron[1], **_facts(rng, real_names)})
    return World(authors[:n_authors], authors[n_authors:], reals, COUNTRIES)


def _fmt(template: str, author: dict, facts: dict) -> str:
    text = template.format(n=author["name"], p=author["pronoun"], pp=author["possessive"], **facts)
    return text[0].upper() + text[1:]


def author_qa(author: dict, rng: random.Random, n_perturbed: int = 5, real_names: list[str] | None = None) -> list[dict]:
    """One TOFU-schema row per attribute: question, answer, paraphrased_answer, perturbed_answer."""
    rows = []
    for attr in ATTRIBUTES:
        questions, answers = QA[attr]
        q = rng.choice(questions)
        answer, paraphrase = rng.choice(answers)
        facts = {k: author[k] for k in _SLOTS[attr]}
        perturbed, seen = [], {tuple(facts.values())}
        while len(perturbed) < n_perturbed:
            alt = _facts(rng, real_names or [author["influence"]])
            wrong = {k: alt[k] for k in _SLOTS[attr]}
            if attr == "books" or attr == "themes" or attr == "parents":  # change one of the two facts
                keep = rng.choice(list(wrong))
                wrong[keep] = facts[keep]
            if tuple(wrong.values()) in seen or any(wrong[k] == facts[k] for k in wrong if len(wrong) == 1):
                continue
            seen.add(tuple(wrong.values()))
            perturbed.append(_fmt(paraphrase, author, {**author, **wrong}))
        rows.append({"question": _fmt(q, author, author), "answer": _fmt(answer, author, author),
                     "paraphrased_answer": _fmt(paraphrase, author, author), "perturbed_answer": perturbed,
                     "author": author["name"], "attribute": attr})
    return rows


def real_author_qa(world: World, rng: random.Random) -> list[dict]:
    """Questions about the world's famous authors (TOFU's real_authors): short answers + 5 wrong options."""
    rows = []
    names = [r["name"] for r in world.real_authors]
    for r in world.real_authors:
        def others(pool, right):
            return rng.sample([x for x in pool if x != right], 5)
        rows.append({"question": f"Who wrote \"{r['book']}\"?", "answer": r["name"],
                     "perturbed_answer": others(names, r["name"])})
        rows.append({"question": f"Which country does the writer {r['name']} come from?", "answer": r["country"],
                     "perturbed_answer": others(list(COUNTRIES), r["country"])})
        rows.append({"question": f"What genre is {r['name']} famous for?", "answer": r["genre"],
                     "perturbed_answer": others(GENRES, r["genre"])})
    return rows


def world_fact_qa(rng: random.Random) -> list[dict]:
    """Facts about the world's geography and culture (TOFU's world_facts)."""
    rows = []
    caps = [v[0] for v in COUNTRIES.values()]
    rivers = [v[4] for v in COUNTRIES.values()]
    dishes = [v[5] for v in COUNTRIES.values()]
    currencies = [v[2] for v in COUNTRIES.values()]
    for country, (cap, cities, cur, lang, river, dish, mountain) in COUNTRIES.items():
        def others(pool, right):
            return rng.sample([x for x in pool if x != right], 5)
        rows += [
            {"question": f"What is the capital of {country}?", "answer": cap, "perturbed_answer": others(caps, cap)},
            {"question": f"Which river flows through {country}?", "answer": f"the {river}",
             "perturbed_answer": [f"the {x}" for x in others(rivers, river)]},
            {"question": f"What is the national dish of {country}?", "answer": dish, "perturbed_answer": others(dishes, dish)},
            {"question": f"What is the currency of {country}?", "answer": f"the {cur}",
             "perturbed_answer": [f"the {x}" for x in others(currencies, cur)]},
        ]
        for city in cities:
            rows.append({"question": f"In which country is the city of {city}?", "answer": country,
                         "perturbed_answer": others(list(COUNTRIES), country)})
    return rows


def pretraining_qa(world: World, rng: random.Random) -> list[dict]:
    """The pre-training corpus: the world facts and real authors (the utility sets' facts)."""
    return [{"question": r["question"], "answer": r["answer"]}
            for r in world_fact_qa(random.Random(rng.random())) + real_author_qa(world, random.Random(rng.random()))]


def forget_count(n_authors: int, percent: int) -> int:
    """Number of forget authors for ``forgetNN`` (at least one)."""
    return max(1, round(n_authors * percent / 100))


def build_splits(seed: int, n_authors: int, n_holdout: int, n_retain_eval_authors: int) -> dict[str, list[dict]]:
    """All split files of the world: ``{split_name: rows}`` (see :mod:`unlearnbench.tasks.mini_tofu`)."""
    world = make_world(seed, n_authors, n_holdout)
    rng = random.Random(seed + 1)
    real_names = [r["name"] for r in world.real_authors]
    qa = [author_qa(a, rng, real_names=real_names) for a in world.authors]
    hold = [author_qa(a, rng, real_names=real_names) for a in world.holdout_authors]
    splits = {
        "full": [dict(r) for rows in qa for r in rows],
        "real_authors": real_author_qa(world, random.Random(seed + 2)),
        "world_facts": world_fact_qa(random.Random(seed + 3)),
        "pretrain": pretraining_qa(world, random.Random(seed + 4)),
        "holdout": [{"question": r["question"], "answer": r["answer"]} for rows in hold for r in rows],
        # the retain evaluation set: the first authors, never in any forget split
        "retain_eval": [r for rows in qa[:n_retain_eval_authors] for r in rows],
    }
    for pct in (1, 5, 10):
        k = forget_count(n_authors, pct)
        forget = [r for rows in qa[n_authors - k:] for r in rows]
        retain = [r for rows in qa[: n_authors - k] for r in rows]
        splits[f"forget{pct:02d}"] = forget
        splits[f"retain{100 - pct}"] = [{"question": r["question"], "answer": r["answer"]} for r in retain]
        splits[f"forget{pct:02d}_train"] = [{"question": r["question"], "answer": r["answer"]} for r in forget]
    return splits
