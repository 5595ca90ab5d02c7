#!/usr/bin/env python3
"""Write a large SYNTHETIC book catalog for benchmarks, in the format of data/sample-catalog.json.

    python3 bench/generate-catalog.py --count 100000 --seed 42 --out /tmp/catalog-100k.json
    python3 bench/generate-catalog.py --count 1000 --format jsonl > /tmp/catalog-1k.jsonl

Every record has the fields of the sample catalog: isbn, title, subtitle, description, publisher,
publishedYear, language, pageCount, authors, categories, totalCopies.

Nothing here is a real book. The ISBNs are synthetic: prefix 979-8, then the record's sequence
number (--isbn-start + index) as eight digits, then a valid ISBN-13 check digit. They are unique
within one file and the same for every seed, and never collide with the sample catalog (which uses
978 ISBNs), but 979-8 is a live range (ISBNs issued in the USA), so a synthetic ISBN may happen to
equal some real book's.

Output is the same for the same --count/--seed/--format/--isbn-start. The word lists, the author
pool and the publisher list do not depend on the seed (so benchmark queries stay valid across
seeds); which book gets which of them does. Records are written as they are generated (the whole
catalog is never held in memory). Standard library only.
"""

import argparse
import bisect
import itertools
import json
import math
import random
import string
import sys
import time

# The 25 categories of data/sample-catalog.json, with a skewed popularity.
CATEGORIES = [
    ("Literary Fiction", 16), ("Classics", 12), ("Science Fiction", 9), ("Fantasy", 9),
    ("Mystery", 8), ("Romance", 8), ("History", 7), ("Biography", 6), ("Thriller", 6),
    ("Children", 6), ("Young Adult", 5), ("Historical Fiction", 5), ("Science", 5),
    ("Philosophy", 4), ("Horror", 4), ("Politics", 3), ("Psychology", 3), ("Economics", 3),
    ("Computer Science", 3), ("Poetry", 2), ("Religion", 2), ("Drama", 2), ("Travel", 2),
    ("Mathematics", 2), ("Art", 2),
]

LANGUAGES = [("en", 84), ("fr", 5), ("de", 5), ("es", 4), ("it", 2)]

FIRST_NAMES = """
James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Margaret Mark
Sandra Donald Ashley Steven Emily Paul Donna Andrew Michelle Joshua Carol Kenneth Amanda Kevin
Melissa Brian Deborah George Stephanie Edward Rebecca Ronald Laura Timothy Helen Jason Sharon
Jeffrey Cynthia Ryan Kathleen Jacob Amy Gary Shirley Nicholas Angela Eric Anna Jonathan Ruth
Stephen Brenda Larry Pamela Justin Nicole Scott Katherine Brandon Virginia Samuel Catherine
Benjamin Christine Gregory Samantha Frank Debra Alexander Janet Raymond Rachel Patrick Carolyn
Jack Emma Dennis Maria Jerry Heather Tyler Diane Aaron Julie Henry Joyce Douglas Evelyn Peter
Frances Adam Joan Nathan Christina Zachary Kelly Walter Victoria Kyle Lauren Harold Martha
José Zoë Chloé Renée Agnès Hélène François Jérôme Søren Björn Åsa Jürgen Günter Jörg Ulrike
Łukasz Małgorzata Wojciech Ildikó Dóra Ángel Inés Mónica Raúl Joaquín Sofía Nuño Tomás Zoltán
Ignacio Lucía Gaël Anaïs Noël Léa Benoît Céline Amélie Maëlle Élodie Işıl Çağla Ayşe Oğuz
Hiroshi Yuki Kenji Aiko Wei Mei Jun Min-jun Ji-woo Arjun Priya Ananya Rohan Kwame Amara Chidi
Ngozi Oluwaseun Fatima Omar Layla Yusuf Leila Dmitri Olga Ivan Natalia Sergei Anya Pavel
""".split()

LAST_NAMES = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham
Reynolds Griffin Wallace West Cole Hayes Bryant Gibson Ellis Stevens Murray Ford Marshall Owens
McDonald Harrison Ruiz Kennedy Wells Alvarado Woods Mendez Castro Olson Shaw Dunn Hunter Hicks
Müller Schröder Köhler Weiß Bäcker Größer Schäfer Krüger Hoffmann Fischer Becker Wagner
Núñez Muñoz Peña Ibáñez Fernández Martín Sáenz Gómez Pérez Domínguez Márquez Álvarez Suárez
Lefèvre Dubois Moreau Girard Bonnaire Rousseau Faure Chevalier Lévêque Bélanger Côté Gagné
Kowalski Wiśniewski Wójcik Kamiński Lewandowski Zieliński Szymański Dąbrowski Łęcki
Novák Dvořák Černý Procházka Kučera Horváth Kovács Szabó Tóth Nagy Varga
Jensen Nielsen Hansen Pedersen Andersen Larsen Sørensen Østergaard Lindqvist Åberg Ström
Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti
Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Sato Chen Wang Li Zhang Liu
Yang Huang Zhao Wu Zhou Park Choi Jung Kang Singh Kumar Sharma Gupta Mehta Iyer Reddy Nair
Okafor Adeyemi Mensah Okonkwo Abubakar Haddad Khalil Nasser Aziz Rahman Hussein Petrov Ivanov
Smirnov Volkov Sokolov Popescu Ionescu Yılmaz Kaya Demir Şahin Çelik Öztürk Papadopoulos
O'Brien O'Connor MacLeod Fitzgerald Gallagher Doyle Byrne Quinn Kavanagh
""".split()

PUBLISHER_FIRST = """
North Harbor Lantern Meridian Oak Willow Granite Silver Cobalt Amber Riverside Hollow Beacon
Crescent Summit Orchard Ember Falcon Heron Juniper Saffron Atlas Compass Keystone Larch Marlow
Pinecone Quill Raven Sable Thistle Vellum Wren Yarrow Zephyr Bramble Cinder Driftwood Evergreen
Foxglove Gilded Halcyon Ironwood Kestrel Lodestar Mistral Nightjar Otter Pelican Quarry Rook
""".split()
PUBLISHER_SECOND = """
Press Books Publishing House Editions Verlag Éditions Ediciones Editore Media
""".split()

# Title vocabulary (English), with the words benchmarks search for.
TITLE_ADJ = """
Dark Silent Lost Hidden Broken Golden Last First Secret Burning Forgotten Distant Wild Quiet
Bitter Crimson Endless Hollow Little Long Midnight Northern Ancient Restless Strange Sacred
Savage Shattered Silver Small Southern Sweet Velvet Winter Summer Autumn Electric Invisible
Glass Paper Iron Final Perfect Sleeping Wandering Drowned Radiant Fallen Frozen Gentle
""".split()
TITLE_NOUN = """
Darkness History Garden River House City Night Sea Mountain Forest Light Shadow Kingdom Road
Empire Island Heart Storm Fire Stone Queen King Daughter Son Mother Father Sister Brother Memory
Dream Clock Bridge Door Window Letter Map Song Voice War Peace Harvest Orchard Library Tower
Station Winter Summer Moon Sun Star Sky Ocean Desert Valley Harbor Lighthouse Machine Engine
Code Algorithm Theorem Equation Universe Planet Garden Café Señor Wolf Fox Raven Crow Horse
Silence Truth Lie Promise Secret Ghost Angel Devil Saint Stranger Traveler Witness Detective
Murder Crime Inheritance Revolution Republic Market Fortune Debt Mind Soul Body Spirit Time
""".split()
TITLE_PLACE = [
    "Paris", "Venice", "Lisbon", "Vienna", "Prague", "Kraków", "Zürich", "München", "Málaga",
    "Besançon", "Genève", "Reykjavík", "Cairo", "Kyoto", "Havana", "Tangier", "Istanbul", "Odessa",
    "Marrakesh", "Buenos Aires", "Montréal", "São Paulo", "Edinburgh", "Dublin",
]
# (pattern, weight). {A} adjective, {N} noun, {P} place, {V} verb, {F}/{L} first/last name.
TITLE_PATTERNS_EN = [
    ("The {A} {N}", 14), ("The {N} of {N}", 10), ("{A} {N}", 8), ("The {N} of the {A} {N}", 6),
    ("A {N} in {P}", 5), ("{N} and {N}", 5), ("The Last {N} of {P}", 3), ("Beyond the {N}", 3),
    ("The {N} Under the {N}", 3), ("Into the {A} {N}", 3), ("The {A} {N} of {P}", 4),
    ("{F}'s {N}", 5), ("The {N} of {F} {L}", 4), ("{F} {L} and the {A} {N}", 3),
    ("The {L} {N}", 4), ("{N} at {L} {N}", 3), ("A {A} {N} for {F}", 2),
    ("The {N} Who {V} the {N}", 3), ("Letters from the {N}", 2), ("A History of the {A} {N}", 2),
    ("A Short History of {N}", 1), ("{N} of Darkness", 1), ("The Garden of {A} {N}", 1),
    ("Across the {A} River", 1), ("Café {P}", 1), ("Señor {N}", 1), ("Über {P}", 1),
]
TITLE_VERB = "Loved Stole Saved Lost Found Crossed Forgot Remembered Painted Sold Burned Knew".split()

FOREIGN_TITLES = {
    "fr": ["Le {fN} {fA}", "La {fN} de {P}", "Les {fN}s du {fN}", "Un {fN} à {P}", "Le Café de {P}"],
    "de": ["Der {dA} {dN}", "Über die {dN}", "Die {dN} von {P}", "Das Ende der {dN}", "Ein {dN} für {P}"],
    "es": ["El {sN} {sA}", "La {sN} de {P}", "Señor {sN}", "Cien años de {sN}", "Un {sN} en {P}"],
    "it": ["Il {iN} {iA}", "La {iN} di {P}", "Un {iN} a {P}", "Le città {iA}"],
}
FOREIGN_WORDS = {
    "fA": "noir obscur perdu secret dernier étrange éternel doré".split(),
    "fN": "jardin fleuve nuit château mémoire silence été hiver café rêve".split(),
    "dA": "dunkle stille letzte verlorene ewige fremde goldene".split(),
    "dN": "Dunkelheit Garten Fluss Nacht Stadt Erinnerung Straße Brücke Zeit Schatten".split(),
    "sA": "oscuro perdido último secreto dorado eterno".split(),
    "sN": "jardín río noche soledad memoria silencio señor corazón sombra".split(),
    "iA": "oscura perduta ultima segreta invisibili eterna".split(),
    "iN": "giardino fiume notte memoria silenzio città ombra".split(),
}
SUBTITLES = [
    "A Novel", "A Memoir", "A History", "Stories", "Poems", "A Biography", "An Introduction",
    "A Journey", "The Untold Story", "A Mystery", "Essays", "A Field Guide", "Selected Letters",
    "A Love Story", "A Thriller", "Second Edition", "Volume I", "Volume II", "Collected Works",
]

# Real words for descriptions; the rest of the 3,000-word vocabulary is made-up words (see build_vocabulary).
REAL_WORDS = """
story novel life world family war love death city river garden history darkness light shadow
journey secret memory time house village mountain sea island forest road night morning winter
summer spring autumn child children mother father daughter son sister brother friend stranger
king queen empire kingdom republic revolution power money debt market trade science theory
mathematics number proof machine computer code algorithm network language music painting
poetry voice letter book library school teacher student doctor soldier detective murder crime
mystery ghost god faith church temple prayer spirit soul mind body heart dream truth lie
justice law court trial prison freedom slavery exile home return escape search discovery
voyage ship harbor train station bridge tower castle palace farm field harvest storm fire
water earth stone iron gold silver glass paper ink map clock bell door window wall street
market café restaurant hotel museum theater cinema photograph portrait mirror shadowy bright
dark quiet silent lost hidden broken golden ancient modern young old small great long short
strange familiar dangerous gentle cruel kind wise foolish brave fearful lonely restless
beautiful terrible bitter sweet rich poor northern southern eastern western distant nearby
follows tells explores reveals traces recounts describes imagines remembers discovers loses
finds builds destroys saves betrays loves fears hunts escapes returns travels crosses waits
learns teaches writes reads paints sings fights wins fails survives grows changes becomes
across through between beneath beyond during after before against among within without
generation century decade year season moment evening dawn dusk twilight midnight afternoon
ocean desert valley plain coast shore cliff cave lake pond stream canal delta glacier volcano
wolf fox bear horse raven crow owl eagle whale tiger lion snake spider bee butterfly rose
orchard vineyard meadow hedge oak willow birch pine cedar maple ivy moss fern lily tulip
engineer merchant banker sailor pilot nurse lawyer judge priest monk nun poet painter composer
architect scientist mathematician philosopher historian journalist photographer inventor
widow orphan heir heiress twin cousin uncle aunt grandmother grandfather neighbor lover rival
empire colony border frontier province capital parliament election protest strike union
inheritance fortune bankruptcy scandal affair marriage divorce wedding funeral birth childhood
naïve façade résumé über señor crème jalapeño doppelgänger fiancée soirée protégé cliché déjà
élan entrée piñata mañana Zürich München Kraków Málaga Besançon Genève Reykjavík Montréal
""".split()

# The most frequent words of any description, as in real text.
FUNCTION_WORDS = "the of and a in to with from his her their its".split()

SYLLABLES = """
ka lo mi ra ven tor el an is ur ba de fi go hu ja ke li mo nu pa qui re si ta vo wa xe yo za
mar bel dor fen gal hal ith jor kel lum mor nor ost pel quor ril sar tam ul vin wyn zel
""".split()


def cumulative(weights):
    return list(itertools.accumulate(weights))


def zipf_cum(n, s, q=0.0):
    """Cumulative Zipf-Mandelbrot weights 1/(rank+q)^s for ranks 1..n."""
    return cumulative(1.0 / (r + q) ** s for r in range(1, n + 1))


def build_vocabulary(rng, size):
    """Real words take the popular ranks, made-up words the long tail."""
    words = list(dict.fromkeys(REAL_WORDS))
    rng.shuffle(words)
    words = FUNCTION_WORDS + [w for w in words if w not in FUNCTION_WORDS]
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def build_authors(rng, size):
    names, seen = [], set()
    initials = "ABCDEFGHJKLMNPRSTVW"
    while len(names) < size:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        roll = rng.random()
        if roll < 0.15:
            name = f"{first} {rng.choice(initials)}. {last}"
        elif roll < 0.22:
            name = f"{rng.choice(initials)}. {rng.choice(initials)}. {last}"
        else:
            name = f"{first} {last}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def build_publishers(rng, size):
    names, seen = [], set()
    while len(names) < size:
        roll = rng.random()
        if roll < 0.25:
            name = f"{rng.choice(PUBLISHER_FIRST)} & {rng.choice(PUBLISHER_FIRST)}"
        else:
            name = f"{rng.choice(PUBLISHER_FIRST)} {rng.choice(PUBLISHER_SECOND)}"
        if name not in seen and name.split(" & ")[0] != name.split(" & ")[-1]:
            seen.add(name)
            names.append(name)
    return names


def isbn13(body12):
    total = sum((3 if i % 2 else 1) * int(c) for i, c in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


class Generator:
    def __init__(self, count, seed):
        fixed = random.Random(20261123)  # seed-independent pools
        self.authors = build_authors(fixed, min(20000, max(5000, count // 7)))
        self.publishers = build_publishers(fixed, 200)
        self.vocab = build_vocabulary(fixed, 3000)

        self.rng = random.Random(seed)
        self.author_cum = zipf_cum(len(self.authors), 1.1, q=60.0)
        self.publisher_cum = zipf_cum(len(self.publishers), 0.9, q=3.0)
        self.vocab_cum = zipf_cum(len(self.vocab), 1.0, q=2.0)
        self.title_patterns = [t for t, _ in TITLE_PATTERNS_EN]
        self.title_cum = cumulative(w for _, w in TITLE_PATTERNS_EN)
        self.cat_names = [c for c, _ in CATEGORIES]
        self.cat_cum = cumulative(w for _, w in CATEGORIES)
        self.lang_names = [lang for lang, _ in LANGUAGES]
        self.lang_cum = cumulative(w for _, w in LANGUAGES)

    def pick(self, items, cum):
        return items[bisect.bisect_right(cum, self.rng.random() * cum[-1])]

    def title(self, lang):
        rng = self.rng
        if lang != "en" and rng.random() < 0.8:
            pattern = rng.choice(FOREIGN_TITLES[lang])
            fill = {k: rng.choice(v) for k, v in FOREIGN_WORDS.items()}
            fill["P"] = rng.choice(TITLE_PLACE)
            return pattern.format(**fill)
        pattern = self.pick(self.title_patterns, self.title_cum)
        # str.format substitutes each field name once, so draw the words one by one.
        draw = {"A": TITLE_ADJ, "N": TITLE_NOUN, "P": TITLE_PLACE, "V": TITLE_VERB,
                "F": FIRST_NAMES, "L": LAST_NAMES}
        out = []
        for literal, field, _, _ in string.Formatter().parse(pattern):
            out.append(literal)
            if field:
                out.append(rng.choice(draw[field]))
        return "".join(out)

    def description(self):
        rng = self.rng
        words = rng.choices(self.vocab, cum_weights=self.vocab_cum, k=rng.randint(15, 60))
        sentences, i = [], 0
        while i < len(words):
            n = rng.randint(6, 14)
            chunk = words[i:i + n]
            i += n
            sentences.append(chunk[0][:1].upper() + chunk[0][1:] + ("" if len(chunk) == 1 else " " + " ".join(chunk[1:])) + ".")
        return " ".join(sentences)

    def book(self, isbn):
        rng = self.rng
        lang = self.pick(self.lang_names, self.lang_cum)
        roll = rng.random()
        n_authors = 1 if roll < 0.88 else (2 if roll < 0.97 else 3)
        authors = []
        while len(authors) < n_authors:
            a = self.pick(self.authors, self.author_cum)
            if a not in authors:
                authors.append(a)
        roll = rng.random()
        n_cats = 1 if roll < 0.5 else (2 if roll < 0.85 else 3)
        cats = []
        while len(cats) < n_cats:
            c = self.pick(self.cat_names, self.cat_cum)
            if c not in cats:
                cats.append(c)
        year = 2025 - min(175, int(rng.expovariate(1 / 22.0)))
        pages = max(80, min(1200, int(rng.lognormvariate(math.log(290), 0.45))))
        copies = min(10, 1 + int(rng.expovariate(1 / 1.8)))
        return {
            "isbn": isbn,
            "title": self.title(lang),
            "subtitle": rng.choice(SUBTITLES) if rng.random() < 0.3 else None,
            "description": self.description(),
            "publisher": self.pick(self.publishers, self.publisher_cum),
            "publishedYear": year,
            "language": lang,
            "pageCount": pages,
            "authors": authors,
            "categories": cats,
            "totalCopies": copies,
        }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=100000, help="number of books (default 100000)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--out", default="-", help="output file, '-' for stdout (default)")
    p.add_argument("--format", choices=["json", "jsonl"], default="json",
                   help="json: one array, 2-space indent, like the sample; jsonl: one object a line")
    p.add_argument("--isbn-start", type=int, default=1,
                   help="sequence number of the first ISBN (979-8 + 8 digits + check digit)")
    args = p.parse_args()
    if args.count < 0 or args.isbn_start < 0 or args.isbn_start + args.count > 10**8:
        p.error("--count/--isbn-start out of range (979-8 has 10^8 sequence numbers)")

    started = time.monotonic()
    gen = Generator(args.count, args.seed)
    used_authors, used_categories = set(), set()
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    written = 0
    try:
        write = out.write
        if args.format == "json":
            write("[")
        for i in range(args.count):
            rec = gen.book(isbn13(f"9798{args.isbn_start + i:08d}"))
            used_authors.update(rec["authors"])
            used_categories.update(rec["categories"])
            if args.format == "json":
                body = json.dumps(rec, ensure_ascii=False, indent=2).replace("\n", "\n  ")
                write(("\n  " if i == 0 else ",\n  ") + body)
            else:
                write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            written += 1
        if args.format == "json":
            write("\n]\n" if written else "]\n")
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    elapsed = time.monotonic() - started
    print(f"generate-catalog: {written} books, {len(used_authors)} authors, "
          f"{len(used_categories)} categories, {len(gen.publishers)} publishers, "
          f"seed {args.seed}, {args.format} -> {args.out}, {elapsed:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
