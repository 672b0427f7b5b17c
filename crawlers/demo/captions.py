"""Caption text that says exactly what a scene shows, in news, alt-text and social styles, in en/fr/de/es."""

from __future__ import annotations

import random

from crawlers.demo.scenes import Group, Scene

LANGS = ("en", "fr", "de", "es")
_EN_NUM = {1: "one", 2: "two", 3: "three", 4: "four"}
_EN_SHAPE_PL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars",
                "hexagon": "hexagons", "diamond": "diamonds"}
_EN_REL = {"above": "above", "below": "below", "left": "to the left of", "right": "to the right of"}
_EN_POS = {"centre": "in the centre", "top-left": "in the top left corner", "top-right": "in the top right corner",
           "bottom-left": "in the bottom left corner", "bottom-right": "in the bottom right corner"}

# French: shape -> (singular, plural, feminine?), colour -> (m sg, f sg, m pl, f pl)
_FR_SHAPE = {"circle": ("cercle", "cercles", False), "square": ("carré", "carrés", False),
             "triangle": ("triangle", "triangles", False), "star": ("étoile", "étoiles", True),
             "hexagon": ("hexagone", "hexagones", False), "diamond": ("losange", "losanges", False)}
_FR_COL = {"red": ("rouge", "rouge", "rouges", "rouges"), "blue": ("bleu", "bleue", "bleus", "bleues"),
           "green": ("vert", "verte", "verts", "vertes"), "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
           "black": ("noir", "noire", "noirs", "noires"), "white": ("blanc", "blanche", "blancs", "blanches"),
           "grey": ("gris", "grise", "gris", "grises"), "orange": ("orange",) * 4,
           "purple": ("violet", "violette", "violets", "violettes"), "pink": ("rose", "rose", "roses", "roses"),
           "brown": ("marron",) * 4}
_FR_NUM = {2: "deux", 3: "trois", 4: "quatre"}
_FR_REL = {"above": "au-dessus", "below": "en dessous", "left": "à gauche", "right": "à droite"}
_FR_POS = {"centre": "au centre", "top-left": "en haut à gauche", "top-right": "en haut à droite",
           "bottom-left": "en bas à gauche", "bottom-right": "en bas à droite"}

# German: shape -> (singular, plural, dative plural, gender m/n/f)
_DE_SHAPE = {"circle": ("Kreis", "Kreise", "Kreisen", "m"), "square": ("Quadrat", "Quadrate", "Quadraten", "n"),
             "triangle": ("Dreieck", "Dreiecke", "Dreiecken", "n"), "star": ("Stern", "Sterne", "Sternen", "m"),
             "hexagon": ("Sechseck", "Sechsecke", "Sechsecken", "n"), "diamond": ("Raute", "Rauten", "Rauten", "f")}
_DE_COL = {"red": "rot", "blue": "blau", "green": "grün", "yellow": "gelb", "black": "schwarz", "white": "weiß",
           "grey": "grau", "orange": "orangen", "purple": "violett", "pink": "pink", "brown": "braun"}
_DE_NUM = {2: "zwei", 3: "drei", 4: "vier"}
_DE_REL = {"above": "über", "below": "unter", "left": "links von", "right": "rechts von"}
_DE_POS = {"centre": "in der Mitte", "top-left": "oben links", "top-right": "oben rechts",
           "bottom-left": "unten links", "bottom-right": "unten rechts"}

# Spanish: shape -> (singular, plural, feminine?), colour -> (m sg, f sg, m pl, f pl)
_ES_SHAPE = {"circle": ("círculo", "círculos", False), "square": ("cuadrado", "cuadrados", False),
             "triangle": ("triángulo", "triángulos", False), "star": ("estrella", "estrellas", True),
             "hexagon": ("hexágono", "hexágonos", False), "diamond": ("rombo", "rombos", False)}
_ES_COL = {"red": ("rojo", "roja", "rojos", "rojas"), "blue": ("azul", "azul", "azules", "azules"),
           "green": ("verde", "verde", "verdes", "verdes"),
           "yellow": ("amarillo", "amarilla", "amarillos", "amarillas"),
           "black": ("negro", "negra", "negros", "negras"), "white": ("blanco", "blanca", "blancos", "blancas"),
           "grey": ("gris", "gris", "grises", "grises"), "orange": ("naranja", "naranja", "naranjas", "naranjas"),
           "purple": ("morado", "morada", "morados", "moradas"), "pink": ("rosa", "rosa", "rosas", "rosas"),
           "brown": ("marrón", "marrón", "marrones", "marrones")}
_ES_NUM = {2: "dos", 3: "tres", 4: "cuatro"}
_ES_REL = {"above": "encima de", "below": "debajo de", "left": "a la izquierda de", "right": "a la derecha de"}
_ES_POS = {"centre": "en el centro", "top-left": "arriba a la izquierda", "top-right": "arriba a la derecha",
           "bottom-left": "abajo a la izquierda", "bottom-right": "abajo a la derecha"}


def _en_group(g: Group) -> str:
    if g.count == 1:
        article = "an" if g.colour[0] in "aeiou" else "a"
        return f"{article} {g.colour} {g.shape}"
    return f"{_EN_NUM[g.count]} {g.colour} {_EN_SHAPE_PL[g.shape]}"


def _fr_group(g: Group) -> str:
    sg, pl, fem = _FR_SHAPE[g.shape]
    m_sg, f_sg, m_pl, f_pl = _FR_COL[g.colour]
    if g.count == 1:
        return f"{'une' if fem else 'un'} {sg} {f_sg if fem else m_sg}"
    return f"{_FR_NUM[g.count]} {pl} {f_pl if fem else m_pl}"


def _de_group(g: Group, *, dative: bool) -> str:
    sg, pl, dat_pl, gender = _DE_SHAPE[g.shape]
    stem = _DE_COL[g.colour]
    if g.count > 1:
        return f"{_DE_NUM[g.count]} {stem}{'en' if dative else 'e'} {dat_pl if dative else pl}"
    if dative:
        return f"{'einer' if gender == 'f' else 'einem'} {stem}en {sg}"
    ending = {"m": "er", "n": "es", "f": "e"}[gender]
    return f"{'eine' if gender == 'f' else 'ein'} {stem}{ending} {sg}"


def _es_group(g: Group) -> str:
    sg, pl, fem = _ES_SHAPE[g.shape]
    m_sg, f_sg, m_pl, f_pl = _ES_COL[g.colour]
    if g.count == 1:
        return f"{'una' if fem else 'un'} {sg} {f_sg if fem else m_sg}"
    return f"{_ES_NUM[g.count]} {pl} {f_pl if fem else m_pl}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe(scene: Scene, lang: str) -> str:
    """The plain description, used as alt text: 'Two red circles above a blue square on a green background'."""
    a = scene.groups[0]
    two = len(scene.groups) == 2
    if lang == "en":
        where = f"{_EN_REL[scene.relation]} {_en_group(scene.groups[1])}" if two else _EN_POS[scene.position]
        return _cap(f"{_en_group(a)} {where} on a {scene.background} background")
    if lang == "fr":
        if two:
            b = _fr_group(scene.groups[1])
            where = f"{_FR_REL[scene.relation]} {'d' + chr(39) + b if b[0] in 'u' else 'de ' + b}"
        else:
            where = _FR_POS[scene.position]
        return _cap(f"{_fr_group(a)} {where} sur fond {_FR_COL[scene.background][0]}")
    if lang == "de":
        where = (f"{_DE_REL[scene.relation]} {_de_group(scene.groups[1], dative=True)}" if two
                 else _DE_POS[scene.position])
        return _cap(f"{_de_group(a, dative=False)} {where} auf {_DE_COL[scene.background]}em Hintergrund")
    where = f"{_ES_REL[scene.relation]} {_es_group(scene.groups[1])}" if two else _ES_POS[scene.position]
    return _cap(f"{_es_group(a)} {where} sobre fondo {_ES_COL[scene.background][0]}")


_NEWS_TAIL = {
    "en": (", officials said.", " on Tuesday, according to the city council.", ", in a picture released on Monday.",
           ", as seen from the town hall.", " at the opening of the exhibition."),
    "fr": (", selon la mairie.", ", lors de l'inauguration mardi.", ", sur une photo publiée lundi."),
    "de": (", teilte die Stadt mit.", ", bei der Eröffnung am Dienstag.",
           ", auf einem am Montag veröffentlichten Bild."),
    "es": (", según el ayuntamiento.", ", durante la inauguración del martes.", ", en una foto publicada el lunes."),
}
_NEWS_HEAD = {"en": ("", "A file picture shows ", "Pictured: ", "The new installation: "),
              "fr": ("", "Sur cette photo : "), "de": ("", "Im Bild: "), "es": ("", "En la imagen: ")}


def news_caption(scene: Scene, lang: str, rng: random.Random) -> str:
    """A figcaption in news style: 'Two red circles above a blue square on a green background, officials said.'"""
    head = rng.choice(_NEWS_HEAD[lang])
    body = describe(scene, lang)
    if head:
        body = body[0].lower() + body[1:] if lang != "de" else body
    return f"{head}{body}{rng.choice(_NEWS_TAIL[lang])}"


_SOCIAL_HEAD = {"en": ("Spotted this today: ", "morning sketch: ", "new drawing! ", "can't stop making these: "),
                "fr": ("Mon dessin du jour : ", "Vu ce matin : "), "de": ("Meine Skizze heute: ", "Heute gesehen: "),
                "es": ("Mi dibujo de hoy: ", "Visto esta mañana: ")}


def social_text(scene: Scene, lang: str, tag: str, rng: random.Random) -> str:
    body = describe(scene, lang)
    if lang != "de":
        body = body[0].lower() + body[1:]
    return f"{rng.choice(_SOCIAL_HEAD[lang])}{body} #{tag}"


def social_alt(scene: Scene, lang: str) -> str:
    return f"{describe(scene, lang)}."


_EN_TITLE = ("Council unveils {a}", "Residents react to {a}", "Inside the studio behind {a}",
             "Why {a} became the talk of the town", "Exhibition opens with {a}", "Debate grows over {a}")
_TITLE = {"fr": ("La ville dévoile {a}", "Exposition : {a}"), "de": ("Die Stadt zeigt {a}", "Ausstellung: {a}"),
          "es": ("La ciudad presenta {a}", "Exposición: {a}")}


def title(scene: Scene, lang: str, rng: random.Random) -> str:
    g = scene.groups[0]
    if lang == "en":
        phrase = _en_group(g)
    elif lang == "fr":
        phrase = _fr_group(g)
    elif lang == "de":
        phrase = _de_group(g, dative=False)
    else:
        phrase = _es_group(g)
    return _cap(rng.choice(_EN_TITLE if lang == "en" else _TITLE[lang]).format(a=phrase))


_PARAGRAPHS = {
    "en": ("The arrangement drew a steady stream of visitors throughout the day, many of whom stopped to take "
           "pictures.", "Organisers said the display would remain in place until the end of the month.",
           "Local shop owners welcomed the extra foot traffic, though some residents questioned the cost.",
           "A spokesperson for the council said further installations were planned for next year."),
    "fr": ("L'installation a attiré de nombreux visiteurs tout au long de la journée.",
           "Les organisateurs ont indiqué que l'exposition resterait en place jusqu'à la fin du mois."),
    "de": ("Die Installation zog den ganzen Tag über zahlreiche Besucher an.",
           "Die Veranstalter sagten, die Ausstellung bleibe bis zum Ende des Monats geöffnet."),
    "es": ("La instalación atrajo a numerosos visitantes durante todo el día.",
           "Los organizadores dijeron que la exposición permanecerá abierta hasta final de mes."),
}


def paragraphs(lang: str, rng: random.Random, n: int = 2) -> list[str]:
    pool = list(_PARAGRAPHS[lang])
    rng.shuffle(pool)
    return pool[:n]


# --- deliberate caption trouble -----------------------------------------------------------------------------
BOILERPLATE = ("Click to enlarge", "image", "Photo", "IMG_4032.JPG", "placeholder", "untitled", "DSC_0192.jpg")
SHORT = ("Sunset", "Red shapes", "Untitled sketch", "Look!")
# Generic alt texts that pass every caption rule (several words, no boilerplate phrase) and describe nothing.
GENERIC = ("Photo of the day", "Our picture of the week", "Scenes from the weekend", "A moment from the festival",
           "Readers' pictures of the month", "Today's featured photograph", "More photos from the event")
CREDITS = (("Photo: {name}/Reuters", "{name}/Reuters"), ("(AP Photo/{name})", "AP Photo/{name}"),
           ("Credit: {name}/Getty Images", "{name}/Getty Images"))
NAMES = ("Jane Doe", "John Smith", "Maria Lopez", "Kenji Sato", "Amara Okafor", "Lars Berg")


def with_credit(caption: str, rng: random.Random) -> tuple[str, str]:
    """The caption as printed with a photo credit glued on, and the credit a correct extractor separates out."""
    template, credit = rng.choice(CREDITS)
    name = rng.choice(NAMES)
    return f"{caption} {template.format(name=name)}", credit.format(name=name)


def mojibake(text: str) -> str:
    """UTF-8 bytes mis-decoded as cp1252: what ftfy repairs."""
    return text.encode("utf-8").decode("cp1252")


def mojibake_source(scene: Scene, rng: random.Random) -> str:
    """An English caption that contains non-ASCII characters, so mis-decoding it is visible."""
    return f"{describe(scene, 'en')} outside the café in Málaga, officials said."


def entity_source(scene: Scene) -> tuple[str, str]:
    """(text as it appears after one HTML-unescape, clean text): the page double-escaped an ampersand."""
    clean = f"{describe(scene, 'en')}, officials & residents said."
    return clean.replace("&", "&amp;"), clean


def too_long(scene: Scene) -> str:
    sentence = describe(scene, "en") + " was photographed again from a slightly different angle."
    return " ".join([sentence] * (1200 // len(sentence) + 1))
