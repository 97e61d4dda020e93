"""Synopses and titles: per-genre phrase pools and the sentences built from them.

Each genre has its own pools; NEUTRAL pools imply no genre. A synopsis is assembled from
slots (hero, setting, inciting event, tagline), each filled from a revealed genre's pool or
a neutral one, plus the story theme's goal, in one of several sentence shapes.
"""

from __future__ import annotations

import re

import numpy as np

from mmrec.data.synthetic.vocabulary import pick

_P = dict  # short alias: the tables below are long

HEROES = _P(
    Action=["an ex-special-forces bodyguard", "a getaway driver with one last job",
            "a disgraced bomb-disposal expert", "a bare-knuckle fighter", "a rogue federal agent",
            "a stunt double turned vigilante"],
    Adventure=["a treasure hunter", "a young cartographer", "a riverboat captain",
               "an explorer with a torn map", "a stowaway on a tall ship", "a mountain guide"],
    Animation=["a talking fox", "a small robot made of spare parts", "a shy young dragon",
               "a toy left behind after a move", "a brave little mouse", "a lost paper kite"],
    Comedy=["a hopelessly clumsy wedding planner", "a failed stand-up comedian",
            "a substitute teacher with a fake resume", "an overconfident party clown",
            "a lazy house-sitter", "the world's worst magician"],
    Crime=["a weary homicide detective", "a small-time forger", "a mob accountant",
           "a corrupt narcotics cop", "a safecracker on parole", "a bookie deep in debt"],
    Documentary=["a veteran field biologist", "a small-town archivist",
                 "a team of volunteer divers", "a retired union organiser",
                 "a family of beekeepers", "a war photographer"],
    Drama=["a grieving widower", "a struggling single mother", "a once-famous pianist",
           "an ageing factory worker", "a young nurse on night shifts", "a dying patriarch"],
    Fantasy=["an apprentice sorceress", "an exiled elf prince", "a blacksmith's daughter",
             "the last dragon rider", "a hedge witch", "a knight without a sword"],
    Horror=["a babysitter alone in a farmhouse", "a paranormal investigator",
            "a night-shift morgue attendant", "a young priest", "a sleepwalking child",
            "a caretaker who hears whispers"],
    Musical=["an aspiring Broadway dancer", "a street singer", "a choir director",
             "a jazz trumpeter", "a songwriter with stage fright", "a tap-dancing postman"],
    Mystery=["an amateur sleuth", "a retired inspector", "a crossword-obsessed librarian",
             "a private investigator", "a crime novelist", "a sharp-eyed housekeeper"],
    Romance=["a lonely florist", "a hopeless romantic", "a wedding photographer",
             "a widowed baker", "a travel writer", "a shy violinist"],
    **{"Sci-Fi": ["a starship engineer", "an android", "a colonist on Mars",
                  "a time-travelling physicist", "a cargo pilot", "a clone"]},
    Thriller=["a witness under protection", "a hacker", "a paranoid journalist",
              "an air-traffic controller", "a kidnap negotiator", "a whistle-blower"],
    War=["a young infantry private", "a field medic", "a resistance courier",
         "a bomber navigator", "a sniper", "a nurse at the front"],
    Western=["a drifting gunslinger", "a frontier sheriff", "a rancher's widow",
             "a bounty hunter", "a cattle drover", "a stagecoach driver"],
)  # fmt: skip
NEUTRAL_HEROES = [
    "a young woman", "a retired teacher", "a restless teenager", "an ambitious lawyer",
    "a quiet schoolteacher", "a factory foreman", "a disillusioned architect",
    "a college dropout", "a former athlete", "an ageing actor", "a small-town mechanic",
    "a shy accountant", "a hotel receptionist", "a cab driver", "a botanist",
    "a museum guard", "a single father", "an estranged twin", "a recent widow",
    "an unemployed chef",
]  # fmt: skip
SETTINGS = _P(
    Action=["in a city under lockdown", "aboard a runaway freight train",
            "in the gang-run docks of Marseille", "on an oil rig in a storm",
            "in a skyscraper seized by mercenaries"],
    Adventure=["deep in the Amazon", "across the Sahara", "on an uncharted island",
               "in the ruins of a lost temple", "high in the Himalayas"],
    Animation=["in a kingdom of talking animals", "in a toy shop that wakes at night",
               "in a candy-coloured undersea city", "in a forest of giant mushrooms",
               "in a town run by cats"],
    Comedy=["at a disastrous family reunion", "at a cut-price holiday resort",
            "on the world's worst road trip", "at a chaotic suburban wedding",
            "in a failing burger franchise"],
    Crime=["in the rain-soaked streets of 1970s New York", "in a Naples crime family",
           "in a border town ruled by cartels", "in the backrooms of a casino",
           "in the Chicago underworld"],
    Documentary=["over ten years of filming", "in remote Arctic villages",
                 "inside a struggling public hospital", "along the length of the Mekong",
                 "behind the scenes of an election"],
    Drama=["in a dying mining town", "in post-war Berlin", "in a crowded hospital ward",
           "in a working-class suburb", "on a family farm facing foreclosure"],
    Fantasy=["in an enchanted kingdom", "in a realm where magic is outlawed",
             "in a city of floating towers", "in an ancient elven forest",
             "under a sky with two moons"],
    Horror=["in an isolated cabin in the woods", "in an abandoned asylum",
            "in a village where children vanish", "in a house with a locked cellar",
            "in a hotel closed for the winter"],
    Musical=["on the bright stages of Broadway", "in a Harlem jazz club",
             "in a touring rock-and-roll revue", "in a failing dance academy",
             "at a national choir contest"],
    Mystery=["in a snowbound country manor", "on a luxury train across Europe",
             "in a sleepy Cornish village", "in a lighthouse on a foggy coast",
             "in a locked university library"],
    Romance=["in springtime Paris", "in a seaside bookshop", "on a Tuscan vineyard",
             "at a small-town summer festival", "in a snowy Vermont inn"],
    **{"Sci-Fi": ["on a generation ship bound for a distant star",
                  "in a neon megacity in 2190", "on a mining colony on Europa",
                  "aboard an orbital station", "in a future where memories are for sale"]},
    Thriller=["in a city gripped by a serial bomber", "inside a hijacked airliner",
              "in a surveillance state", "inside a corrupt drug company",
              "during a blackout in a crowded city"],
    War=["on the beaches of Normandy", "in the trenches of the Somme", "in occupied Warsaw",
         "in the jungles of Vietnam", "at the siege of Stalingrad"],
    Western=["in the dusty frontier town of Red Creek", "on the Oregon Trail",
             "in the New Mexico badlands", "on a cattle ranch in Wyoming",
             "in a lawless mining camp"],
)  # fmt: skip
NEUTRAL_SETTINGS = [
    "in a quiet coastal town", "in a sprawling city", "in a small village", "in the suburbs",
    "in a crowded apartment block", "in a provincial town", "in a mountain town",
    "in present-day London", "in 1980s Ohio", "on a remote island", "in a seaside resort",
    "in a sleepy river town", "in Lisbon", "in a university town", "in a fading industrial city",
]  # fmt: skip
INCITINGS = _P(
    Action=["when a heist turns into a bloodbath", "when terrorists seize the building",
            "after a car chase leaves a senator dead", "when an old enemy takes a hostage",
            "when a shipment of weapons goes missing"],
    Adventure=["when an ancient map surfaces", "after a shipwreck strands the crew",
               "when a rival expedition races for the same treasure",
               "when a legendary city is spotted from the air",
               "after finding a compass that points to gold"],
    Animation=["when a magic wish goes wrong", "when the toys wake up",
               "after a storm blows the whole village into the sky",
               "when a grumpy wizard steals the sun", "after getting lost far from home"],
    Comedy=["when a white lie snowballs out of control", "after accidentally winning the lottery",
            "when a mix-up swaps two identical suitcases",
            "after being mistaken for a famous chef", "when the in-laws move in"],
    Crime=["when a routine burglary uncovers a body", "after a robbery goes wrong",
           "when a witness to a mob killing disappears", "after stealing from the wrong family",
           "when a drug deal turns into a massacre"],
    Documentary=["as cameras follow a year of hardship",
                 "through archive footage and candid interviews",
                 "as a community fights to survive", "as scientists race to save a species",
                 "as a forgotten true story is pieced together"],
    Drama=["after a sudden death in the family", "when a long-kept secret comes out",
           "after losing a job of thirty years", "when an estranged son returns",
           "after a diagnosis changes everything"],
    Fantasy=["when a prophecy names an unlikely hero", "after a dragon's egg hatches",
             "when the old magic begins to fail", "after stealing a cursed crown",
             "when the dark lord's army marches"],
    Horror=["when something begins scratching inside the walls",
            "after a seance goes horribly wrong", "when the dead refuse to stay buried",
            "after a cursed videotape arrives",
            "when a stranger's grin appears in every photograph"],
    Musical=["when the big audition is a week away", "after a song goes viral",
             "when the old theatre is about to close", "after landing the lead in a musical",
             "when a rival band steals the show"],
    Mystery=["when a guest is found dead in a locked room", "after a string of poisonings",
             "when a priceless painting vanishes", "after an anonymous letter names a killer",
             "when every clue points to the butler"],
    Romance=["after a chance meeting on a delayed train", "when an old flame returns",
             "after swapping homes for the holidays", "when a fake engagement turns real",
             "after a love letter arrives thirty years late"],
    **{"Sci-Fi": ["when an alien signal is decoded", "after the ship's AI goes silent",
                  "when a wormhole opens above Earth",
                  "after waking from cryosleep centuries late", "when the clones rebel"]},
    Thriller=["when a stranger knows every secret",
              "after witnessing a murder from a hotel window",
              "when a hacked phone starts giving orders", "after a ransom call at midnight",
              "when a conspiracy reaches the top of government"],
    War=["when the regiment is cut off behind enemy lines", "after the invasion begins",
         "when a bridge must be held at all costs", "after the order to retreat never comes",
         "when the bombing raids start"],
    Western=["when outlaws rob the stagecoach", "after a range war breaks out",
             "when the railroad comes to town", "after a gunfight at high noon",
             "when a gold strike brings every thief in the territory"],
)  # fmt: skip
NEUTRAL_INCITINGS = [
    "when an old letter resurfaces", "after a chance encounter", "when a stranger arrives",
    "after an unexpected inheritance", "when a childhood friend calls for help",
    "after a long-buried secret surfaces", "when a storm cuts the town off",
    "after a missed train", "when everything falls apart at once",
    "after a sudden move across the country", "when a wrong-number call turns strange",
    "after a wedding is called off",
]  # fmt: skip
TAGLINES = _P(
    Action=["Expect explosions, chases and no mercy.", "One night. No way out.",
            "The countdown has begun.", "Nobody walks away clean."],
    Adventure=["Fortune favours the bold.", "Adventure waits beyond the edge of the map.",
               "X marks the spot.", "The greatest journey is the one home."],
    Animation=["A big-hearted animated tale for the whole family.",
               "Small heroes, big dreams.", "A colourful romp full of songs and giggles.",
               "Friendship is the greatest magic of all."],
    Comedy=["What could possibly go wrong?", "Chaos, hilarity and a very bad idea.",
            "A laugh-out-loud farce.", "It's all fun and games until someone loses the keys."],
    Crime=["Crime pays, until it doesn't.", "Everyone has a price.",
           "The city has no clean hands.", "Some debts are paid in blood."],
    Documentary=["A true story, told by the people who lived it.", "Filmed as it happened.",
                 "An eye-opening portrait of ordinary courage.", "The real story, at last."],
    Drama=["A quiet, devastating portrait of ordinary lives.", "Some wounds never close.",
           "A story about what we owe each other.", "Life rarely goes to plan."],
    Fantasy=["Magic always has a price.", "Legends are born, not made.",
             "The old gods are waking.", "A spellbinding quest."],
    Horror=["Some doors should stay closed.", "Don't turn out the lights.",
            "It already knows your name.", "Nobody leaves before sunrise."],
    Musical=["Every heart has a song.", "Let the music play.", "The show must go on.",
             "Dance like nobody's watching."],
    Mystery=["Everyone is a suspect.", "The truth is hidden in plain sight.",
             "Every clue leads deeper.", "Who did it, and why?"],
    Romance=["Love finds a way.", "Some hearts are worth the wait.",
             "A love story for the ages.", "Falling in love was never part of the plan."],
    **{"Sci-Fi": ["The future is already here.", "Humanity's last hope lies among the stars.",
                  "In deep space, no one is coming.", "Tomorrow will not wait."]},
    Thriller=["Trust no one.", "Every second counts.", "The walls have ears.",
              "Someone is always watching."],
    War=["No one comes home unchanged.", "War makes strangers of brothers.",
         "Courage under fire.", "Hold the line."],
    Western=["The law ends where the railroad does.", "Justice rides alone.",
             "A fistful of grit.", "The frontier takes no prisoners."],
)  # fmt: skip
NEUTRAL_TAGLINES = [
    "Nothing will ever be the same.", "Some choices cannot be undone.",
    "Every ending is a beginning.", "The past never stays buried.",
    "One decision changes everything.", "Time is running out.",
    "It was only supposed to be one summer.", "Home is not a place.",
    "Some stories refuse to end.", "Everyone is running from something.",
]  # fmt: skip
THEME_GOALS = {
    "revenge": ["settle an old score", "hunt down the people who destroyed everything",
                "decide whether vengeance is worth the cost", "repay a betrayal in kind"],
    "family": ["hold a broken family together", "protect a younger brother at any cost",
               "reconnect with an estranged father", "keep a promise made to a dying mother"],
    "love": ["win back a lost love", "choose between two people who changed everything",
             "risk everything for a forbidden romance", "learn to love again"],
    "survival": ["survive until dawn", "find water, shelter and a way home",
                 "stay alive against impossible odds", "outlast the cold, the hunger and each other"],
    "friendship": ["save a best friend from a terrible mistake", "keep a childhood pact",
                   "lead a band of misfits who become friends",
                   "stand by a friend everyone else abandoned"],
    "identity": ["discover who they really are", "uncover the truth about a hidden past",
                 "decide who to become", "reclaim a name that was stolen"],
    "power": ["seize control of a crumbling empire", "topple a ruthless tycoon",
              "claw their way to the top", "decide how much power is too much"],
    "redemption": ["make amends for a terrible mistake", "earn a second chance",
                   "win back the trust of everyone they failed",
                   "atone for the sins of a former life"],
    "coming of age": ["grow up faster than anyone should",
                      "get through the last summer before adulthood",
                      "leave home for the first time", "find the courage to stand alone"],
    "betrayal": ["find out who sold them out", "expose a traitor in the inner circle",
                 "trust the one person who lied before",
                 "unmask a betrayal that goes all the way to the top"],
    "freedom": ["escape a life of servitude", "break out before the walls close in",
                "lead a desperate escape", "win freedom for an entire village"],
    "obsession": ["chase an obsession to the edge of sanity",
                  "finish a masterpiece whatever the cost",
                  "solve a puzzle that consumes everything", "beat a rival who cannot be beaten"],
}  # fmt: skip
TURNS = [
    "sees life upended", "is pulled into trouble", "finds everything changing",
    "faces a reckoning", "is thrown off course", "is forced to act",
]  # fmt: skip
NAMES = [
    "Mara", "Jonah", "Elena", "Theo", "Rosa", "Victor", "Iris", "Samuel", "Nadia", "Felix",
    "Clara", "Omar", "June", "Dmitri", "Lena", "Marcus", "Ada", "Hugo", "Priya", "Cole",
    "Beatrix", "Tomas", "Ines", "Walter", "Yara", "Emmett", "Sofia", "Abel", "Greta", "Rafael",
    "Nell", "Casper", "Lucia", "Ezra", "Mina", "Otto", "Hazel", "Ike", "Vera", "Silas",
]  # fmt: skip
SURNAMES = [
    "Alder", "Brandt", "Castell", "Dunmore", "Ekwueme", "Farrow", "Guerra", "Halloran",
    "Ishikawa", "Jansen", "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Pereira",
    "Quill", "Rasmussen", "Sato", "Toivonen", "Umber", "Varga", "Whitlock", "Yilmaz", "Zeller",
]  # fmt: skip

TITLE_ADJ = [
    "Silent", "Last", "Broken", "Golden", "Hidden", "Distant", "Quiet", "Lost", "Crimson",
    "Long", "Bitter", "Second", "Secret", "Northern", "Burning", "Hollow", "Velvet", "Wild",
    "Little", "Endless", "Paper", "Glass", "Summer", "Winter", "Midnight", "Restless", "Pale",
    "Open", "Falling", "Iron", "Blue", "Electric", "Sleeping", "Salt", "Borrowed", "Faded",
    "Southern", "Wandering", "Careless", "Tender", "Amber", "Empty", "Sudden", "Small",
]  # fmt: skip
TITLE_NOUN = [
    "Harbor", "River", "Promise", "Garden", "Road", "Letter", "Season", "Echo", "Horizon",
    "Shadow", "Bridge", "Window", "Island", "Mirror", "Highway", "Lantern", "Orchard", "Tide",
    "Compass", "Storm", "Ashes", "Fire", "Stone", "Heart", "Crown", "Key", "Signal", "Circle",
    "Hours", "Nights", "Waves", "Lights", "Stars", "Weather", "Room", "Country", "Silence",
    "Distance", "Ghosts", "Birds", "Fields", "Streets", "Doors", "Secrets", "Sparrow", "Harvest",
]  # fmt: skip
TITLE_PLACES = [
    "Brooklyn", "Lisbon", "Kyoto", "Marrakesh", "Havana", "Oslo", "Tangier", "Memphis",
    "Bristol", "Juniper Creek", "Port Royal", "Alder Bay", "Sorrento", "Tulsa", "Reno",
    "Galway", "Valparaiso", "Cairo", "Montana", "Saint Clair", "Bellhaven", "Dunmore",
]  # fmt: skip
TITLE_GENRE_WORDS = _P(
    Action=["Fury", "Bullet", "Vendetta", "Payback", "Strike", "Overdrive", "Firepower"],
    Adventure=["Quest", "Expedition", "Treasure", "Voyage", "Odyssey", "Safari"],
    Animation=["Whiskers", "Bubbles", "Sprout", "Pip", "Tumble", "Marshmallow"],
    Comedy=["Mayhem", "Shenanigans", "Blunder", "Honeymooners", "Misfits", "Hiccup"],
    Crime=["Heist", "Racket", "Mob", "Alibi", "Ransom", "Getaway"],
    Documentary=["Portrait", "Testimony", "Record", "Chronicle", "Witness", "Archive"],
    Drama=["Grief", "Inheritance", "Homecoming", "Reckoning", "Mourning", "Sacrifice"],
    Fantasy=["Dragon", "Sorcerer", "Realm", "Spell", "Throne", "Rune"],
    Horror=["Blood", "Haunting", "Curse", "Bones", "Terror", "Grave"],
    Musical=["Melody", "Rhythm", "Serenade", "Encore", "Chorus", "Ballad"],
    Mystery=["Riddle", "Clue", "Enigma", "Cipher", "Vanishing", "Suspect"],
    Romance=["Kiss", "Sweetheart", "Valentine", "Embrace", "Darling", "Honeymoon"],
    **{"Sci-Fi": ["Nebula", "Orbit", "Android", "Quantum", "Singularity", "Starship"]},
    Thriller=["Panic", "Pursuit", "Paranoia", "Trap", "Countdown", "Hostage"],
    War=["Battalion", "Trenches", "Frontline", "Armistice", "Siege", "Platoon"],
    Western=["Outlaw", "Gunslinger", "Sheriff", "Saddle", "Mesa", "Rustler"],
)  # fmt: skip


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_title(rng: np.random.Generator, genre_word: str | None) -> str:
    """One title from a dozen patterns; ``genre_word`` (or None) may take the noun slot."""
    adj, place = pick(rng, TITLE_ADJ), pick(rng, TITLE_PLACES)
    noun = genre_word or pick(rng, TITLE_NOUN)
    noun2 = pick(rng, TITLE_NOUN)
    name = pick(rng, NAMES)
    patterns = [
        f"The {adj} {noun}",
        f"{adj} {noun}",
        f"{noun} of {place}",
        f"{name}'s {noun}",
        f"{adj} {noun} in {place}",
        f"{noun} and {noun2}",
        f"A {noun} for {name}" if not noun.endswith("s") else f"{noun} for {name}",
        f"{place} {noun}",
        f"The {noun}",
        f"{noun} at {adj} {noun2}",
        f"The {noun} of {name} {pick(rng, SURNAMES)}",
        f"{adj} {noun2}: {place}" if genre_word is None else f"{noun}: {adj} {noun2}",
    ]
    title = pick(rng, patterns)
    return re.sub(r"^A (?=[AEIOU])", "An ", title)  # "An Orchard for Mara"


def make_synopsis(
    rng: np.random.Generator, genres: list[str], revealed: list[str], themes: list[str]
) -> str:
    """A 100-300 character synopsis implying exactly the ``revealed`` genres and the themes.

    Revealed genres are dealt to slots (hero, setting, inciting event, tagline); the other
    slots take genre-neutral phrases, so a genre that is not revealed leaves no trace.
    """
    for _attempt in range(40):
        slots = ["hero", "setting", "inciting", "tagline"]
        order = list(rng.permutation(len(slots)))
        owner: dict[str, str | None] = dict.fromkeys(slots)
        for genre, slot_i in zip(revealed, order):
            owner[slots[slot_i]] = genre
        hero = pick(rng, HEROES[owner["hero"]]) if owner["hero"] else pick(rng, NEUTRAL_HEROES)
        if owner["setting"]:
            setting = pick(rng, SETTINGS[owner["setting"]])
        else:
            setting = pick(rng, NEUTRAL_SETTINGS) if rng.random() < 0.7 else ""
        if owner["inciting"]:
            inciting = pick(rng, INCITINGS[owner["inciting"]])
        else:
            inciting = pick(rng, NEUTRAL_INCITINGS)
        if owner["tagline"]:
            tagline = pick(rng, TAGLINES[owner["tagline"]])
        else:
            tagline = pick(rng, NEUTRAL_TAGLINES) if rng.random() < 0.6 else ""
        goal = pick(rng, THEME_GOALS[themes[0]])
        goal2 = pick(rng, THEME_GOALS[themes[1]]) if len(themes) > 1 else ""
        sp = f" {setting}" if setting else ""
        turn = pick(rng, TURNS)
        shape = int(rng.integers(6))
        if rng.random() < 0.35:
            # A named hero carries the setting inside the apposition: "Mara, a nurse in Oslo,".
            inner = sp if shape != 2 else ""
            hero, sp = f"{pick(rng, NAMES)}, {hero}{inner},", ("" if shape != 2 else sp)
        if shape == 0:
            text = f"{_cap(inciting)}, {hero}{sp} must {goal}."
        elif shape == 1:
            text = f"{_cap(hero)}{sp} {turn} {inciting}. Now they must {goal}."
        elif shape == 2 and setting:
            text = f"{_cap(setting)}, {hero} {turn} {inciting}, and sets out to {goal}."
        elif shape == 3:
            text = f"{_cap(inciting)}, {hero} sets out to {goal}{sp}."
        elif shape == 4:
            text = f"{_cap(hero)}{sp} has one chance to {goal} {inciting}."
        else:
            text = f"{_cap(hero)}{sp} {turn} {inciting}, and has to {goal}."
        text = text.replace(",,", ",").replace(", ,", ",")
        if goal2:
            text += " " + pick(
                rng,
                [f"Along the way, they must also {goal2}.", f"But first they will have to {goal2}.",
                 f"It is also their last chance to {goal2}."],
            )  # fmt: skip
        if tagline:
            text += " " + tagline
        if len(text) < 100 and owner["tagline"] is None:
            text += " " + pick(rng, NEUTRAL_TAGLINES)
        if 100 <= len(text) <= 300:
            return text
    # Forty draws all out of range cannot happen with these pools; fail loudly if they change.
    raise RuntimeError(f"synopsis out of 100-300 characters after 40 draws: {text!r}")
