"""The embedded teachers' replies pinned: what the DSP "hears" (listen.py), what the embedded ALM says about it
(alm.py), what the scripted LLM answers to the paper's filled prompts (llm.py), and how the plugin registers them.

Measurements are built by hand where a branch or a threshold is the point, and measured from synthesised or
hand-made waves where the point is the chain from audio to answer. The LLM's prompts are the paper's prompt files,
filled as the algorithms fill them (``Prompts.fill`` with ``evidence``, ``listing`` and ``bullets``).
"""

import dataclasses
import json
import types
import zlib

import numpy as np
import pytest
from afcot_embedded import alm, listen, llm
from afcot_embedded.alm import EmbeddedAlm, EmbeddedAlmConfig
from afcot_embedded.grammar import SUB_QUESTIONS, Clause
from afcot_embedded.listen import Measurements, measure
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig, Facts, ScriptedLlm
from afcot_embedded.world import SAMPLE_RATE, close_negatives, leaf_classes, synthesize
from afcot_paper.prompts import Prompts

from afcot_core.api import COT_SUFFIX, AudioRef, Request, format_question
from afcot_core.audio import audio_ref_from_wave

SR = SAMPLE_RATE
T2 = np.arange(2 * SR) / SR  # two seconds of sample times
PAPER, RELEASE, STRICT = Prompts(), Prompts("release"), Prompts("strict-perception")
CAPTION_Q = "Generate caption for this audio input."


def hand(**changes) -> Measurements:
    """A hand-built measurement: a moderate, steady, sustained 440 Hz tone unless ``changes`` say otherwise."""
    base = Measurements(duration=2.46, loudness_db=-24.4, loudness_level="moderate", loudness_trend="same level",
                        trend_db=0.3, texture="tonal", pitch_hz=440.4, pitch_height="medium",
                        pitch_direction="steady", centroid_hz=912.6, brightness="balanced", event_count=1,
                        event_rate=0.0, tempo=None, regularity=None, envelope="sustained", modulation="steady")
    return dataclasses.replace(base, **changes)


def clicks_m(**changes) -> Measurements:
    """A hand-built measurement of a series of clicks."""
    return hand(**{"texture": "impulsive", "pitch_hz": None, "pitch_height": None, "pitch_direction": None,
                   "event_count": 7, "event_rate": 3.46, "tempo": "slow", "regularity": "evenly spaced", **changes})


def noise_m(**changes) -> Measurements:
    return hand(**{"texture": "noise-like", "pitch_hz": None, "pitch_height": None, "pitch_direction": None,
                   **changes})


def tone(freq, amp=0.1):
    return amp * np.sin(2 * np.pi * freq * T2)


def clicks(times, n=2 * SR):
    wave = np.zeros(n)
    for t in times:
        wave[int(t * SR)] = 1.0
    return wave


def reply(prompt: str, bot: ScriptedLlm | None = None) -> dict:
    return json.loads((bot or ScriptedLlm()).reply(prompt))


# --- listen.py: framing, loudness levels, onsets -----------------------------------------------------------------

def test_frames_are_windows_at_the_hop_and_a_short_wave_is_zero_padded():
    assert listen._frames(np.arange(8.0), 4, 2).tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert listen._frames(np.arange(9.0), 4, 2).tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]
    assert listen._frames(np.arange(4.0), 4, 2).tolist() == [[0, 1, 2, 3]]
    assert listen._frames(np.arange(1.0, 4.0), 4, 2).tolist() == [[1, 2, 3, 0]]


@pytest.mark.parametrize("db, level", [(-3.0, "loud"), (-20.9, "loud"), (-21.0, "moderate"), (-26.0, "moderate"),
                                       (-31.0, "moderate"), (-31.1, "quiet"), (-60.0, "quiet")])
def test_the_loudness_level_has_its_edges_at_minus_21_and_minus_31_db(db, level):
    assert listen._level(db) == level


def _env(length=40, **peaks):
    env = np.full(length, -60.0)
    for i, v in peaks.items():
        env[int(i[1:])] = v
    return env


def test_an_onset_is_a_peak_above_the_floor_that_rose_9_db_within_60_ms():
    assert listen._onsets(_env(p10=-20.0, p25=-30.0), -50.0).tolist() == [10, 25]
    # exactly 9 dB above the lowest of the six frames before counts; 8.9 does not
    assert listen._onsets(_env(p10=-51.0), -70.0).tolist() == [10]
    assert listen._onsets(_env(p10=-51.1), -70.0).tolist() == []
    # the rise is measured over the previous six frames only: a dip seven frames back does not count
    env = np.full(40, -30.0)
    env[3], env[10] = -60.0, -25.0
    assert listen._onsets(env, -28.0).tolist() == []
    env[4] = -60.0
    assert listen._onsets(env, -28.0).tolist() == [10]
    # a peak exactly at the floor counts, one below it does not
    assert listen._onsets(_env(p10=-40.0), -40.0).tolist() == [10]
    assert listen._onsets(_env(p10=-40.0), -39.9).tolist() == []


def test_the_decay_after_an_onset_is_not_a_new_onset():
    env = _env(p10=-20.0, p11=-21.0, p12=-22.0, p13=-26.0, p14=-24.0, p15=-25.0)
    assert listen._onsets(env, -50.0).tolist() == [10]  # 14 is too close; 15 has a higher frame before it
    none = listen._onsets(np.full(20, -60.0), -70.0)
    assert none.tolist() == [] and none.dtype.kind == "i"  # frame indices, even when there are none


def test_onsets_need_five_frames_between_them_and_a_neighbour_on_each_side():
    assert listen._onsets(_env(p10=-20.0, p14=-20.0), -50.0).tolist() == [10]
    assert listen._onsets(_env(p10=-20.0, p15=-20.0), -50.0).tolist() == [10, 15]
    # a plateau is one onset (its first frame), a higher neighbour is not a peak
    assert listen._onsets(_env(p10=-20.0, p11=-20.0), -50.0).tolist() == [10]
    assert listen._onsets(_env(p10=-20.0, p11=-19.0), -50.0).tolist() == [11]
    # a plateau that starts too close to the previous onset is not one further on
    assert listen._onsets(_env(p6=-20.0, p10=-20.0, p11=-20.0), -50.0).tolist() == [6, 11]
    # the first and the last frame are never onsets; the second and the second-to-last may be
    assert listen._onsets(_env(10, p0=-20.0, p9=-20.0), -50.0).tolist() == []
    assert listen._onsets(_env(10, p1=-20.0, p8=-20.0), -50.0).tolist() == [1, 8]


# --- listen.measure: hand-made waves ---------------------------------------------------------------------------

def test_a_steady_tone_measures_as_a_moderate_dark_tonal_sound_at_its_pitch():
    assert measure(tone(440), SR) == Measurements(
        duration=2.0, loudness_db=-23.0, loudness_level="moderate", loudness_trend="same level", trend_db=0.0,
        texture="tonal", pitch_hz=437.5, pitch_height="medium", pitch_direction="steady", centroid_hz=440.0,
        brightness="dark", event_count=1, event_rate=0.0, tempo=None, regularity=None, envelope="sustained",
        modulation="steady")


def test_pitch_height_and_brightness_follow_the_frequency():
    high, low = measure(tone(1500), SR), measure(tone(200), SR)
    assert (high.pitch_hz, high.pitch_height, high.centroid_hz, high.brightness) == (1500.0, "high", 1500.0,
                                                                                     "balanced")
    assert (low.pitch_hz, low.pitch_height, low.centroid_hz, low.brightness) == (203.1, "low", 200.0, "dark")
    # the same samples read at half the rate: half the frequency, twice the duration
    slow = measure(tone(440), SR // 2)
    assert (slow.duration, slow.pitch_hz, slow.pitch_height) == (4.0, 218.8, "low")


def test_pitch_height_and_brightness_edges_belong_to_the_middle_class():
    # 1000 Hz is exactly a spectral bin (64 of 1024 at 16 kHz): not above 1000, so medium
    at = measure(tone(1000), SR)
    assert (at.pitch_hz, at.pitch_height) == (1000.0, "medium")
    assert measure(tone(1015.625), SR).pitch_height == "high"
    assert (measure(tone(312.5), SR).pitch_height, measure(tone(296.875), SR).pitch_height) == ("medium", "low")
    assert measure(tone(600), SR).brightness == "balanced" and measure(tone(590), SR).brightness == "dark"
    assert measure(tone(2515.625), SR).brightness == "bright"


def test_odd_waves_keep_their_duration_and_a_constant_has_the_lowest_bins_pitch():
    assert measure(0.1 * np.sin(np.arange(32123)), SR).duration == 2.01
    assert measure(tone(440)[:500], SR) == Measurements(
        duration=0.03, loudness_db=-23.0, loudness_level="moderate", loudness_trend="same level", trend_db=-0.1,
        texture="tonal", pitch_hz=437.5, pitch_height="medium", pitch_direction="steady", centroid_hz=466.4,
        brightness="dark", event_count=1, event_rate=0.0, tempo=None, regularity=None, envelope="sustained",
        modulation="steady")
    dc = measure(np.full(SR, 0.1), SR)  # the DC bin is not a pitch: the first bin above it is read
    assert (dc.loudness_db, dc.loudness_level, dc.pitch_hz, dc.pitch_height, dc.centroid_hz) == (
        -20.0, "loud", 15.6, "low", 3.1)


def test_a_ramped_tone_gets_louder_or_quieter_by_its_ramp():
    ramp = 10 ** ((np.linspace(-0.5, 0.5, len(T2)) * 10) / 20)
    up, down = measure(tone(440) * ramp, SR), measure(tone(440) / ramp, SR)
    assert (up.loudness_trend, up.trend_db, up.loudness_db) == ("louder", 7.5, -22.1)
    assert (down.loudness_trend, down.trend_db, down.loudness_db) == ("quieter", -7.5, -22.1)
    assert up.envelope == down.envelope == "sustained"


def test_the_loudness_trend_needs_more_than_2_5_db_between_the_first_and_last_quarter():
    def ramped(db):
        return measure(tone(440) * 10 ** ((np.linspace(-0.5, 0.5, len(T2)) * db) / 20), SR)

    assert (ramped(4).trend_db, ramped(4).loudness_trend) == (3.0, "louder")
    assert (ramped(-4).trend_db, ramped(-4).loudness_trend) == (-3.0, "quieter")
    assert (ramped(3).trend_db, ramped(3).loudness_trend) == (2.3, "same level")
    assert (ramped(-3).trend_db, ramped(-3).loudness_trend) == (-2.3, "same level")


def test_a_sound_that_peaks_mid_clip_and_fades_is_not_a_decay():
    m = measure(tone(440) * 10 ** (-30 * np.abs(T2 - 1.0) / 20), SR)
    assert (m.envelope, m.loudness_trend) == ("sustained", "same level")


def test_a_sweep_up_rises_and_a_sweep_down_falls():
    up = measure(0.1 * np.sin(2 * np.pi * np.cumsum(440 * 2 ** T2) / SR), SR)
    down = measure(0.1 * np.sin(2 * np.pi * np.cumsum(1760 * 2 ** -T2) / SR), SR)
    assert (up.pitch_direction, up.pitch_hz, up.brightness) == ("rising", 882.8, "balanced")
    assert (down.pitch_direction, down.pitch_hz, down.centroid_hz) == ("falling", 882.8, 948.7)


def test_a_struck_tone_decays_and_so_counts_as_getting_quieter():
    m = measure(0.5 * tone(440, 1.0) * np.exp(-T2 / 0.2), SR)
    assert (m.envelope, m.loudness_trend, m.trend_db, m.loudness_level, m.loudness_db) == (
        "decays", "quieter", -23.0, "loud", -17.7)
    assert m.modulation == "steady"  # a decay is not a swell


def test_clicks_are_impulsive_events_counted_with_their_rate_and_spacing():
    fast = measure(clicks([0.1 + k * 0.2 for k in range(10)]), SR)
    assert fast == Measurements(
        duration=2.0, loudness_db=-25.1, loudness_level="moderate", loudness_trend="same level", trend_db=0.0,
        texture="impulsive", pitch_hz=None, pitch_height=None, pitch_direction=None, centroid_hz=4000.0,
        brightness="bright", event_count=10, event_rate=5.0, tempo="fast", regularity="evenly spaced",
        envelope="sustained", modulation="steady")
    slow = measure(clicks([0.1 + k * 0.3 for k in range(6)]), SR)
    assert (slow.event_count, slow.event_rate, slow.tempo, slow.regularity) == (6, 3.0, "slow", "evenly spaced")
    uneven = measure(clicks([0.1, 0.2, 0.5, 0.6, 1.1, 1.3, 1.9]), SR)
    assert (uneven.event_count, uneven.event_rate, uneven.tempo, uneven.regularity) == (7, 3.5, "slow", "irregular")


def test_three_clicks_are_a_series_and_two_are_not():
    three = measure(clicks([0.2, 0.8, 1.4]), SR)
    assert (three.texture, three.event_count, three.event_rate, three.tempo, three.regularity) == (
        "impulsive", 3, 1.5, "slow", "evenly spaced")
    m = measure(clicks([0.2, 0.8]), SR)
    assert (m.texture, m.event_count, m.event_rate, m.tempo, m.regularity) == ("noise-like", 1, 0.0, None, None)
    assert m.envelope == "decays"  # up to two onsets, the first the loudest, then silence: a struck sound


def test_four_events_a_second_is_still_slow():
    m = measure(clicks([0.1 + k * 0.25 for k in range(8)]), SR)
    assert (m.event_count, m.event_rate, m.tempo, m.regularity) == (8, 4.0, "slow", "evenly spaced")


def test_a_level_that_swells_periodically_is_regular_and_one_that_wanders_is_irregular():
    am = measure(tone(440) * (0.55 + 0.45 * np.sin(2 * np.pi * 2 * T2)), SR)
    assert (am.modulation, am.loudness_db, am.texture) == ("regular swells", -26.9, "tonal")
    # the detrended level must spread by more than 1.2 dB: a 20 % modulation does not, a 30 % one does
    assert measure(tone(440) * (1 + 0.2 * np.sin(2 * np.pi * 2 * T2)), SR).modulation == "steady"
    assert measure(tone(440) * (1 + 0.3 * np.sin(2 * np.pi * 2 * T2)), SR).modulation == "regular swells"
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(2 * SR)
    assert measure(0.1 * noise, SR).modulation == "steady"
    env = np.interp(T2, np.linspace(0, 2, 8), rng.uniform(0.1, 1.0, size=8))
    wandering = measure(0.1 * rng.standard_normal(2 * SR) * env, SR)
    assert (wandering.modulation, wandering.texture, wandering.brightness) == ("irregular swells", "noise-like",
                                                                              "bright")


def test_integer_samples_are_measured_as_numbers_without_wrapping_around():
    m = measure((1000 * np.sin(2 * np.pi * 440 * T2)).astype(np.int16), SR)
    assert (m.loudness_db, m.loudness_level, m.pitch_hz, m.texture) == (57.0, "loud", 437.5, "tonal")


def test_silence_measures_as_quiet_without_pitch_or_events():
    m = measure(np.zeros(SR), SR)
    assert (m.duration, m.loudness_db, m.loudness_level, m.pitch_hz, m.event_count, m.centroid_hz) == (
        1.0, -180.0, "quiet", None, 1, 0.0)
    empty = measure(np.zeros(0), SR)
    assert (empty.duration, empty.event_rate, empty.loudness_level, empty.texture) == (0.0, 0.0, "quiet", "noise-like")


# --- listen.measure: synthesised clips of the world (seed 5), pinned -----------------------------------------------

WORLD = {
    "chime": Measurements(duration=3.05, loudness_db=-22.0, loudness_level="moderate", loudness_trend="quieter",
                          trend_db=-22.6, texture="tonal", pitch_hz=1843.8, pitch_height="high",
                          pitch_direction="steady", centroid_hz=2419.1, brightness="balanced", event_count=1,
                          event_rate=0.0, tempo=None, regularity=None, envelope="decays", modulation="steady"),
    "dripping": Measurements(duration=3.05, loudness_db=-16.6, loudness_level="loud", loudness_trend="quieter",
                             trend_db=-28.0, texture="impulsive", pitch_hz=1250.0, pitch_height="high",
                             pitch_direction="steady", centroid_hz=1244.0, brightness="balanced", event_count=8,
                             event_rate=2.62, tempo="slow", regularity="irregular", envelope="sustained",
                             modulation="steady"),
    "knocking": Measurements(duration=3.05, loudness_db=-23.1, loudness_level="moderate", loudness_trend="quieter",
                             trend_db=-4.3, texture="impulsive", pitch_hz=109.4, pitch_height="low",
                             pitch_direction="steady", centroid_hz=110.9, brightness="dark", event_count=7,
                             event_rate=2.3, tempo="slow", regularity="evenly spaced", envelope="sustained",
                             modulation="steady"),
    "ticking": Measurements(duration=3.05, loudness_db=-33.6, loudness_level="quiet", loudness_trend="same level",
                            trend_db=-0.1, texture="impulsive", pitch_hz=None, pitch_height=None,
                            pitch_direction=None, centroid_hz=5507.3, brightness="bright", event_count=22,
                            event_rate=7.22, tempo="fast", regularity="evenly spaced", envelope="sustained",
                            modulation="steady"),
    "rising chirp": Measurements(duration=3.05, loudness_db=-25.5, loudness_level="moderate",
                                 loudness_trend="louder", trend_db=4.7, texture="tonal", pitch_hz=859.4,
                                 pitch_height="medium", pitch_direction="rising", centroid_hz=1008.4,
                                 brightness="balanced", event_count=1, event_rate=0.0, tempo=None, regularity=None,
                                 envelope="sustained", modulation="steady"),
    "hiss": Measurements(duration=3.05, loudness_db=-12.3, loudness_level="loud", loudness_trend="same level",
                         trend_db=-0.1, texture="noise-like", pitch_hz=None, pitch_height=None,
                         pitch_direction=None, centroid_hz=6147.6, brightness="bright", event_count=1,
                         event_rate=0.0, tempo=None, regularity=None, envelope="sustained", modulation="steady"),
    "surf": Measurements(duration=3.05, loudness_db=-37.4, loudness_level="quiet", loudness_trend="quieter",
                         trend_db=-5.5, texture="noise-like", pitch_hz=None, pitch_height=None,
                         pitch_direction=None, centroid_hz=989.8, brightness="balanced", event_count=1,
                         event_rate=0.0, tempo=None, regularity=None, envelope="sustained",
                         modulation="regular swells"),
    "wind": Measurements(duration=3.05, loudness_db=-39.5, loudness_level="quiet", loudness_trend="same level",
                         trend_db=2.2, texture="noise-like", pitch_hz=None, pitch_height=None,
                         pitch_direction=None, centroid_hz=737.1, brightness="balanced", event_count=1,
                         event_rate=0.0, tempo=None, regularity=None, envelope="sustained",
                         modulation="irregular swells"),
}


@pytest.mark.parametrize("label", sorted(WORLD))
def test_the_measurements_of_a_synthesised_clip_are_reproduced_exactly(label):
    assert measure(synthesize(label, np.random.default_rng(5)).wave, SR) == WORLD[label]


# --- alm.answer_property, caption, fit, describe --------------------------------------------------------------------

@pytest.mark.parametrize("prop, m, text", [
    ("texture", hand(), "It is a tonal sound with a clear pitch."),
    ("texture", noise_m(), "It is a noise-like sound without a clear pitch."),
    ("texture", clicks_m(), "It is made of short impulsive events."),
    ("pitch_direction", hand(pitch_direction="rising"), "The pitch is rising."),
    ("pitch_direction", noise_m(), "There is no clear pitch."),
    ("pitch_height", hand(pitch_hz=1234.6, pitch_height="high"), "The pitch is high, around 1235 Hz."),
    ("pitch_height", noise_m(), "There is no clear pitch."),
    ("loudness_trend", hand(loudness_trend="louder"), "The sound gets louder towards the end."),
    ("loudness_trend", hand(loudness_trend="quieter"), "The sound gets quieter towards the end."),
    ("loudness_trend", hand(), "The sound stays at the same level."),
    ("loudness_level", hand(loudness_level="quiet", loudness_db=-35.6),
     "The sound is quiet overall, at about -36 dB full scale."),
    ("brightness", hand(brightness="dark", centroid_hz=412.5), "The timbre is dark, with a spectral centroid near "
                                                               "412 Hz."),
    ("regularity", clicks_m(), "The events are evenly spaced."),
    ("regularity", clicks_m(regularity="irregular"), "The events are irregular."),
    ("tempo", clicks_m(), "The events repeat slow, about 3.5 per second."),
    ("event_count", clicks_m(), "I hear 7 separate events."),
    ("regularity", hand(), "There are no separate events; it is one continuous sound."),
    ("tempo", noise_m(), "There are no separate events; it is one continuous sound."),
    ("event_count", hand(), "There are no separate events; it is one continuous sound."),
    ("envelope", hand(envelope="decays"), "The sound starts sharply and then decays."),
    ("envelope", hand(), "The sound is sustained."),
    ("modulation", hand(), "The level stays steady without swells."),
    ("modulation", hand(modulation="regular swells"), "The level swells regularly."),
    ("modulation", hand(modulation="irregular swells"), "The level swells irregularly."),
    ("duration", hand(duration=2.46), "The sound lasts about 2.5 seconds."),
])
def test_the_alm_answers_each_property_in_one_sentence_from_the_measurements(prop, m, text):
    assert alm.answer_property(prop, m) == text


def test_the_alm_has_no_sentence_for_an_unknown_property():
    with pytest.raises(KeyError, match="colour"):
        alm.answer_property("colour", hand())


@pytest.mark.parametrize("m, text", [
    (hand(loudness_level="loud", pitch_height="high", pitch_direction="rising", loudness_trend="louder"),
     "A loud tonal sound with a high pitch that is rising, lasting about 2.5 seconds; it gets louder towards the "
     "end."),
    (hand(pitch_hz=None, brightness="dark", loudness_trend="quieter"),
     "A moderate tonal sound with a dark timbre, lasting about 2.5 seconds; it gets quieter towards the end."),
    (clicks_m(loudness_level="quiet", tempo="fast", regularity="irregular"),
     "A quiet series of short impulsive events, irregular and fast, lasting about 2.5 seconds; its level stays "
     "about the same."),
    (noise_m(brightness="bright"),
     "A moderate noise-like sound with a bright timbre, lasting about 2.5 seconds; its level stays about the same."),
    (hand(envelope="decays", loudness_trend="louder"),
     "A moderate tonal sound with a medium pitch that is steady, lasting about 2.5 seconds; it starts sharply and "
     "decays."),
])
def test_the_caption_names_level_texture_its_detail_duration_and_ending(m, text):
    assert alm.caption(m) == text


def test_mismatches_list_the_contradicted_properties_in_the_order_of_the_class_profile():
    whistle = leaf_classes()["whistle"]
    assert alm.mismatches(whistle, hand(pitch_height="high")) == []
    assert alm.mismatches(whistle, hand(pitch_direction="falling", envelope="decays")) == [
        ("pitch_height", "medium", "high"), ("pitch_direction", "falling", "steady"), ("envelope", "decays",
                                                                                      "sustained")]


def test_the_fit_counts_the_matching_properties_and_names_each_difference():
    assert alm.fit("hum", hand(pitch_height="low")) == "The sound fits 'hum' on 4 of 4 properties."
    assert alm.fit(" Whistle ", hand()) == ("The sound fits 'whistle' on 3 of 4 properties. It differs in pitch "
                                            "height: the sound is medium, while 'whistle' is high.")
    assert alm.fit("ticking", noise_m(brightness="dark")) == (
        "The sound fits 'ticking' on 0 of 4 properties. It differs in texture: the sound is noise-like, while "
        "'ticking' is impulsive; and in event rate: the sound is without it, while 'ticking' is fast; and in event "
        "spacing: the sound is without it, while 'ticking' is evenly spaced; and in brightness: the sound is dark, "
        "while 'ticking' is bright.")
    assert alm.fit("Banjo", hand()) == "I do not know what 'Banjo' sounds like."


def test_the_description_of_a_label_is_its_profile_from_the_ontology():
    assert alm.describe(" Hum") == "A low, steady tone with a few harmonics that holds its pitch and is sustained."
    assert alm.describe("banjo") == "I do not know what 'banjo' sounds like."


def test_a_clause_holds_only_when_the_sound_has_the_property_and_the_value():
    assert alm._holds(Clause("pitch_direction", "steady"), hand())
    assert not alm._holds(Clause("pitch_direction", "rising"), hand())
    assert not alm._holds(Clause("pitch_direction", "steady"), noise_m())  # no pitch: nothing holds
    assert alm._holds(Clause("duration", op=">", number=2.0), hand())
    assert not alm._holds(Clause("duration", op=">", number=2.46), hand())
    # an option's score: clauses that hold, clauses understood (the unparsed part is not counted)
    assert alm._score("the pitch rises and it gets louder", hand(loudness_trend="louder")) == (1, 2)
    assert alm._score("the pitch rises and it sings", hand(pitch_direction="rising")) == (1, 1)
    assert alm._score("it sings", hand()) == (0, 0)


# --- alm.answer_question -------------------------------------------------------------------------------------------

def _mcq(question, choices, cot=False):
    return format_question(question, choices) + (" " + COT_SUFFIX if cot else "")


def test_the_alm_classifies_by_the_label_whose_profile_fits_best():
    m = hand(pitch_height="high")
    assert alm.answer_question(_mcq("Classify the sound.", ["hum", "chime", "whistle"]), m) == "(C) whistle"
    # a tie goes to the first option
    assert alm.answer_question(_mcq("Classify the sound.", ["Hum", "whistle"]), hand()) == "(A) Hum"
    # the share of the profile that fits decides, not the count of misfits: 3 of 4 beats 2 of 3
    rising = hand(pitch_height="low", pitch_direction="rising")
    assert alm.answer_question(_mcq("Classify the sound.", ["falling chirp", "hum"]), rising) == "(B) hum"


def test_the_alm_answers_a_yes_no_question_yes_only_when_every_clause_holds():
    m = hand(pitch_direction="rising", loudness_level="quiet")
    yes_no = ["yes", "no"]
    assert alm.answer_question(_mcq("Is the pitch rising, and is it quiet?", yes_no), m) == "(A) yes"
    assert alm.answer_question(_mcq("Is the pitch rising, and is it loud?", yes_no), m) == "(B) no"
    assert alm.answer_question(_mcq("Is the pitch rising, and is it loud?", ["No", "Yes"]), m) == "(A) No"
    assert alm.answer_question(_mcq("Is the pitch rising, and is it quiet?", ["No", "Yes"]), m) == "(B) Yes"
    # a question it does not understand is answered no
    assert alm.answer_question(_mcq("Is it a dog?", yes_no), m) == "(B) no"


def test_the_alm_picks_the_statement_with_the_largest_share_of_clauses_that_hold():
    m = hand(pitch_direction="rising", loudness_trend="louder")
    options = ["the pitch rises and it gets quieter", "the pitch falls and it gets louder",
               "the pitch rises and it gets louder", "the pitch falls and it gets quieter"]
    assert alm.answer_question(_mcq("How does the sound change over time?", options), m) == (
        "(C) the pitch rises and it gets louder")
    # a one-clause option that holds beats a two-clause one that half holds
    assert alm.answer_question(_mcq("How does it change?", ["the pitch rises and it gets quieter",
                                                            "the pitch rises"]), m) == "(B) the pitch rises"


def test_options_on_one_line_with_full_stops_are_read_as_options():
    m = noise_m(brightness="bright")
    prompt = "Classify the sound.\n(A) rumble. (B) hiss. (C) wind. (D) surf."
    assert alm.answer_question(prompt, m) == "(B) hiss"
    assert alm.answer_question("Which one?\n(A) Model X. (B) Model Y.", m) == "(A) Model X"  # only the stop goes
    # the question is what comes before the first option, even without "Choose the correct option"
    tagged = alm.answer_question(f"{prompt} {COT_SUFFIX}", m)
    assert tagged.splitlines()[0] == ("<SUMMARY> The question asks: Classify the sound. I will listen for the "
                                      "properties that decide it. </SUMMARY>")
    assert tagged.splitlines()[-1] == "<CONCLUSION> (B) hiss </CONCLUSION>"


def test_asked_in_the_tagged_format_the_alm_explains_its_classification_with_its_fits():
    m = hand(pitch_height="high")
    reply = alm.answer_question(_mcq("Classify the sound.", ["hum", "whistle"], cot=True), m)
    assert reply == (
        "<SUMMARY> The question asks: Classify the sound. I will listen for the properties that decide it. "
        "</SUMMARY>\n"
        "<CAPTION> A moderate tonal sound with a high pitch that is steady, lasting about 2.5 seconds; its level "
        "stays about the same. </CAPTION>\n"
        "<REASONING> The sound fits 'hum' on 3 of 4 properties. It differs in pitch height: the sound is high, while "
        "'hum' is low. The sound fits 'whistle' on 4 of 4 properties. </REASONING>\n"
        "<CONCLUSION> (B) whistle </CONCLUSION>")


def test_in_the_tagged_format_the_reasoning_states_each_property_once():
    m = hand(pitch_direction="rising", loudness_level="quiet", loudness_db=-35.0)
    reply = alm.answer_question(_mcq("Is the pitch rising, and is it quiet?", ["yes", "no"], cot=True), m)
    assert reply.splitlines()[0] == ("<SUMMARY> The question asks: Is the pitch rising, and is it quiet? I will "
                                     "listen for the properties that decide it. </SUMMARY>")
    assert reply.splitlines()[2:] == [
        "<REASONING> The pitch is rising. The sound is quiet overall, at about -35 dB full scale. </REASONING>",
        "<CONCLUSION> (A) yes </CONCLUSION>"]
    statements = alm.answer_question(_mcq("Is the pitch rising?", ["the pitch rises", "the pitch falls"], cot=True),
                                     m)
    assert "<REASONING> The pitch is rising. </REASONING>" in statements  # the question's and the options' note
    # the question's own clauses are explained before the properties the options name
    mixed = alm.answer_question(_mcq("Is it quiet?", ["the pitch rises", "the pitch falls"], cot=True), m)
    assert "<REASONING> The sound is quiet overall, at about -35 dB full scale. The pitch is rising. </REASONING>" in (
        mixed)
    understood_nothing = alm.answer_question(_mcq("Is it a dog?", ["yes", "no"], cot=True), m)
    assert "<REASONING> I listened to the audio. </REASONING>" in understood_nothing


def test_statement_options_are_explained_by_the_properties_they_name():
    m = hand(pitch_direction="rising", loudness_trend="louder")
    options = ["the pitch rises and it gets louder", "the pitch falls and it gets quieter"]
    reply = alm.answer_question(_mcq("How does the sound change over time?", options, cot=True), m)
    reasoning = reply.split("<REASONING> ")[1].split(" </REASONING>")[0]
    # (the order of the two sentences is that of a set of property names)
    assert sorted(reasoning.replace(". ", ".\n").splitlines()) == ["The pitch is rising.",
                                                                  "The sound gets louder towards the end."]
    assert reply.endswith("<CONCLUSION> (A) the pitch rises and it gets louder </CONCLUSION>")


def test_a_question_without_readable_options_is_answered_with_the_caption():
    assert alm.answer_question("What is it? (A)", hand()) == alm.caption(hand())


# --- alm.respond and continuation --------------------------------------------------------------------------------

def test_the_alm_routes_each_query_by_what_it_asks():
    m = hand(pitch_height="high")
    assert alm.respond(PAPER.fill("describe", label="chime"), None) == leaf_classes()["chime"].description
    assert alm.respond(PAPER.fill("describe", label="chime"), m) == leaf_classes()["chime"].description
    assert alm.respond(SUB_QUESTIONS["pitch_height"], None) == "I need to hear the audio to answer that."
    assert alm.respond(PAPER.fill("fit", label="whistle"), m) == "The sound fits 'whistle' on 4 of 4 properties."
    assert alm.respond(_mcq("Classify the sound.", ["hum", "whistle"]), m) == "(B) whistle"
    assert alm.respond(SUB_QUESTIONS["pitch_height"], m) == "The pitch is high, around 440 Hz."
    assert alm.respond("How do you feel?", m) == "I cannot tell that from the audio."
    assert alm.respond(CAPTION_Q, m) == alm.caption(m)


def test_the_caption_phrasing_is_picked_and_the_second_says_what_the_clip_holds():
    m = noise_m()
    assert alm.respond(CAPTION_Q, m, lambda c: c[1]) == (
        "The clip holds a moderate noise-like sound with a balanced timbre, lasting about 2.5 seconds; its level "
        "stays about the same.")


def test_a_continuation_is_what_follows_the_prefixs_last_opening_tag():
    full = "<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<CONCLUSION> (B) hiss </CONCLUSION>"
    assert alm.continuation(full, "<SUMMARY> x </SUMMARY>\n<CONCLUSION>") == " (B) hiss </CONCLUSION>"
    assert alm.continuation(full, "<SUMMARY> x </SUMMARY>\n<CAPTION>") == (
        " c </CAPTION>\n<CONCLUSION> (B) hiss </CONCLUSION>")
    assert alm.continuation("<A> one <A> two", "<A>") == " one <A> two"  # after the first occurrence
    assert alm.continuation(full, "") == full
    assert alm.continuation(full, "no tags here") == full
    assert alm.continuation(full, "<REASONING>") == full  # the reply lacks that tag


# --- EmbeddedAlm --------------------------------------------------------------------------------------------------

def test_the_alm_config_decodes_greedily_in_batches_of_32():
    config = EmbeddedAlmConfig()
    assert (config.temperature, config.batching.max_batch, config.batching.max_wait_ms) == (0.0, 32, 2.0)
    teacher = EmbeddedAlm(config)
    assert (teacher.role, teacher.model, teacher.sampling, teacher.batching) == ("alm", "embedded-alm", config,
                                                                                config.batching)
    assert not teacher.sampled and EmbeddedAlm(EmbeddedAlmConfig(temperature=0.5)).sampled


def test_the_alm_generates_from_the_audio_it_is_given_and_continues_a_prefix():
    teacher = EmbeddedAlm(EmbeddedAlmConfig())
    ref = audio_ref_from_wave(tone(440).astype(np.float32), SR)
    prompt = _mcq("Classify the sound.", ["hum", "whistle", "hiss"], cot=True)
    out = teacher.generate([
        Request(SUB_QUESTIONS["pitch_height"], ref), Request(SUB_QUESTIONS["pitch_height"]),
        Request(prompt, ref, prefix="<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<REASONING> r </REASONING>\n"
                                    "<CONCLUSION>"),
        Request(SUB_QUESTIONS["loudness_level"], ref)])
    assert out == ["The pitch is medium, around 438 Hz.", "I need to hear the audio to answer that.",
                   " (A) hum </CONCLUSION>", "The sound is moderate overall, at about -23 dB full scale."]


def test_the_alm_samples_its_caption_phrasing_from_the_request_seed():
    ref = audio_ref_from_wave(tone(440).astype(np.float32), SR)
    greedy = EmbeddedAlm(EmbeddedAlmConfig())
    assert {greedy.generate([Request(CAPTION_Q, ref, seed=s)])[0] for s in range(10)} == {
        "A moderate tonal sound with a medium pitch that is steady, lasting about 2.0 seconds; its level stays "
        "about the same."}
    hot = EmbeddedAlm(EmbeddedAlmConfig(temperature=1.0))
    replies = [hot.generate([Request(CAPTION_Q, ref, seed=s)])[0] for s in range(40)]
    assert {r.split(" ")[0] for r in replies} == {"A", "The"}  # both phrasings, by seed
    assert [hot.generate([Request(CAPTION_Q, ref, seed=s)])[0] for s in range(40)] == replies


def test_the_alm_measures_each_clip_once_and_forgets_the_oldest_beyond_512(monkeypatch):
    loads = []
    monkeypatch.setattr(alm, "load_audio", lambda ref: (loads.append(ref.path or ref.sha256), 16000)[::-1])
    monkeypatch.setattr(alm, "measure", lambda wave, sr: object())
    teacher = EmbeddedAlm(EmbeddedAlmConfig())
    first = teacher.listen(AudioRef(sha256="a", path="x.wav"))
    assert teacher.listen(AudioRef(sha256="a", path="y.wav")) is first  # the content's hash is the key
    assert teacher.listen(AudioRef(path="x.wav")) is not first  # without a hash, the path is
    assert teacher.listen(AudioRef(path="x.wav")) is teacher.listen(AudioRef(path="x.wav"))
    assert teacher.listen(AudioRef(path="y.wav")) is not teacher.listen(AudioRef(path="x.wav"))
    assert len(loads) == 3
    refs = [AudioRef(sha256=f"h{i}") for i in range(509)]
    for ref in refs:
        teacher.listen(ref)
    assert len(loads) == 512 and teacher.listen(AudioRef(sha256="a")) is first  # 512 clips are kept
    teacher.listen(AudioRef(sha256="new"))
    assert len(loads) == 513
    teacher.listen(AudioRef(sha256="new"))
    teacher.listen(refs[0])
    assert len(loads) == 513  # the newest and the younger ones stay
    assert teacher.listen(AudioRef(sha256="a")) is not first and len(loads) == 514  # the oldest was dropped


# --- llm.py: reading prompts --------------------------------------------------------------------------------------

def test_a_block_is_the_text_after_its_label_up_to_a_blank_line_and_a_line_is_one_line():
    text = "Intro\nLabels:\n  - a\n  - b\n\nAfter\nAnswer: hum\nInline: x\ny\n\nz"
    assert llm._block(text, "Labels") == "- a\n  - b"
    assert llm._block(text, "Inline") == "x\ny"
    assert llm._block(text, "Missing") == ""
    assert llm._block("Tail: t\nu", "Tail") == "t\nu"
    assert llm._block("  Labels: indented", "Labels") == ""
    assert llm._line(text, "Answer") == "hum"
    assert llm._line(text, "Inline") == "x"
    assert llm._line(text, "Missing") == ""
    assert llm._listed(text, "Labels") == ["a", "b"]
    assert llm._listed("Labels:\n  - a\n  plain\n  -b\n- c", "Labels") == ["a", "c"]


def test_the_question_and_its_options_are_read_from_each_prompt_layout():
    options = ["the pitch rises", "the pitch falls"]
    mcq = format_question("How does it change?", options)
    caption = {"caption": "A tone.", "chain": ""}
    for prompts in (PAPER, RELEASE):
        assert llm._question(prompts.fill("predict", question=mcq, **caption)) == ("How does it change?", options)
        assert llm._question(prompts.fill("gate", question="Is it loud?")) == ("Is it loud?", [])
        assert llm._question(prompts.fill("validate", question=mcq, answer="the pitch falls", **caption)) == (
            "How does it change?", options)
        assert llm._question(prompts.fill("validate", question="Is it loud?", answer="no.", **caption)) == (
            "Is it loud?", [])
    assert llm._question("Question: Is it loud?\n(A) yes\n(B) no\n\nReply.") == ("Is it loud?", ["yes", "no"])
    assert llm._question("Nothing asked.") == ("", [])


def test_the_chain_is_read_from_question_answer_lines_and_from_listed_pairs():
    evidence = PAPER.evidence([("Q1?", "A1."), ("Q2?", "A2.")])
    assert llm._chain(evidence) == [("Q1?", "A1."), ("Q2?", "A2.")]
    listing = PAPER.listing([("Q1?", "A1."), ("Q2? Answer: not", "A2.")])
    assert llm._chain(listing) == [("Q1?", "A1."), ("Q2? Answer: not", "A2.")]  # split at the last " Answer: "
    assert llm._chain("- no answer here\nQ3? Answer: A3.\n  - Q4? Answer: A4.") == [("Q4?", "A4.")]


def test_the_statements_of_a_text_are_matched_to_the_properties_they_state():
    text = ("First, the pitch is rising. Is it loud? Then, the timbre is dark.\nThe level swells regularly. "
            "I hear 5 separate events. It sings.")
    assert llm._about(text) == ["pitch_direction", "brightness", "modulation", "event_count"]
    assert llm._about("THE TIMBRE IS DARK. Tonal Sound!") == ["brightness", "texture"]  # in any case
    assert llm._about("It is a tonal sound. The sound is quiet overall. The sound is sustained! It lasts about "
                      "2 s. It sings.") == ["texture", "loudness_level", "envelope", "duration"]
    assert llm._statements_of("THE TIMBRE IS DARK.") == [(SUB_QUESTIONS["brightness"], "THE TIMBRE IS DARK.")]
    assert llm._statements_of(text) == [
        (SUB_QUESTIONS["pitch_direction"], "First, the pitch is rising."),
        (SUB_QUESTIONS["brightness"], "Then, the timbre is dark."),
        (SUB_QUESTIONS["modulation"], "The level swells regularly."),
        (SUB_QUESTIONS["event_count"], "I hear 5 separate events."), ("It sings.", "It sings.")]


def test_facts_keep_the_first_stated_value_of_each_property_and_skip_useless_answers():
    facts = Facts([
        (SUB_QUESTIONS["pitch_direction"], "The pitch is rising."),
        (SUB_QUESTIONS["pitch_direction"], "The pitch is falling."),
        (SUB_QUESTIONS["loudness_level"], "I cannot tell that from the audio, it is loud."),
        (SUB_QUESTIONS["brightness"], "I need to hear the audio; dark."),
        (SUB_QUESTIONS["envelope"], "I do not know, it decays."),
        (SUB_QUESTIONS["pitch_height"], "There is no clear pitch."),
        (SUB_QUESTIONS["duration"], "The sound lasts about 2.5 seconds."),
        (SUB_QUESTIONS["event_count"], "I hear 7 separate events."),
        ("What colour is it?", "Blue."),
        (SUB_QUESTIONS["modulation"], "The level swells irregularly."),
    ])
    assert facts.values == {"pitch_direction": "rising", "duration": 2.5, "event_count": 7.0,
                            "modulation": "irregular swells"}
    assert facts.fits == {}
    assert facts.truth(Clause("pitch_direction", "rising")) is True
    assert facts.truth(Clause("pitch_direction", "falling")) is False
    assert facts.truth(Clause("duration", op="<", number=2.5)) is False
    assert facts.truth(Clause("event_count", op=">", number=6)) is True
    assert facts.truth(Clause("brightness", "dark")) is None
    assert facts.truth(None) is None


def test_facts_read_the_fit_of_each_label_as_a_share():
    facts = Facts([
        (PAPER.fill("describe", label="hum"), leaf_classes()["hum"].description),
        (PAPER.fill("fit", label="Hum"), "The sound fits 'hum' on 3 of 4 properties. It differs in pitch height."),
        ("Anything?", "The sound fits 'Whistle' on 4 of 4 properties."),
        (PAPER.fill("fit", label="banjo"), "I do not know what 'banjo' sounds like."),
        (SUB_QUESTIONS["texture"], "It is a tonal sound with a clear pitch."),
    ])
    assert facts.fits == {"hum": 0.75, "whistle": 1.0, "banjo": 0.0}
    assert facts.values == {"texture": "tonal"}


# --- llm.py: the rules -------------------------------------------------------------------------------------------

def _facts(**values) -> Facts:
    facts = Facts([])
    facts.values.update(values)
    return facts


def test_the_llm_derives_yes_no_only_when_every_clause_is_known_or_one_is_false_and_none_unknown():
    q = "Is the pitch rising, and is it quiet?"
    assert llm._derive(q, [], _facts(pitch_direction="rising", loudness_level="quiet")) == "yes"
    assert llm._derive(q, [], _facts(pitch_direction="falling", loudness_level="quiet")) == "no"
    assert llm._derive(q, ["yes", "no"], _facts(pitch_direction="falling", loudness_level="loud")) == "no"
    assert llm._derive(q, [], _facts(pitch_direction="falling")) == "unsure"  # a false clause, an open one
    assert llm._derive(q, [], _facts(pitch_direction="rising")) == "unsure"
    assert llm._derive("What is it?", [], _facts(pitch_direction="rising")) == "unsure"


def test_the_llm_derives_the_one_statement_that_holds_or_the_one_best_fit():
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter"]
    assert llm._derive("How?", options, _facts(pitch_direction="rising", loudness_trend="quieter")) == options[1]
    assert llm._derive("How?", options, _facts(pitch_direction="rising")) == "unsure"
    assert llm._derive("How?", options, _facts(pitch_direction="falling", loudness_trend="quieter")) == "unsure"
    fits = Facts([])
    fits.fits.update(hum=0.75, whistle=1.0, chime=0.5)
    assert llm._derive("Classify the sound.", ["hum", "whistle", "chime"], fits) == "whistle"
    fits.fits["hum"] = 1.0
    assert llm._derive("Classify the sound.", ["hum", "whistle", "chime"], fits) == "unsure"


def test_the_judge_infers_an_answer_only_when_the_evidence_singles_it_out():
    q = "Is the pitch rising, and is it quiet?"
    assert llm._inferable(q, [], _facts(pitch_direction="rising", loudness_level="quiet"), "Yes")
    assert not llm._inferable(q, [], _facts(pitch_direction="rising"), "yes")
    assert not llm._inferable(q, [], _facts(), "yes")
    assert not llm._inferable("What is it?", [], _facts(), "yes")
    assert llm._inferable(q, [], _facts(loudness_level="loud"), "no")  # one false clause is enough for no
    assert not llm._inferable(q, [], _facts(pitch_direction="rising", loudness_level="quiet"), "no")
    assert not llm._inferable(q, [], _facts(pitch_direction="rising", loudness_level="quiet"), "maybe")
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter",
               "the pitch falls and it gets louder"]
    both = _facts(pitch_direction="rising", loudness_trend="quieter")
    assert llm._inferable("How?", options, both, "(B) the pitch rises and it gets quieter")
    assert not llm._inferable("How?", options, both, "the pitch rises and it gets louder")
    assert not llm._inferable("How?", options, _facts(pitch_direction="rising"), options[1])  # (A) not ruled out
    assert not llm._inferable("How?", options, both, "the pitch stays steady")  # not an option
    fits = Facts([])
    fits.fits.update(hum=1.0, whistle=1.0, chime=0.5)
    assert llm._inferable("Classify the sound.", [], fits, "(A) hum") and llm._inferable("C", [], fits, "whistle")
    assert not llm._inferable("C", [], fits, "chime") and not llm._inferable("C", [], fits, "pluck")


def test_a_label_is_ruled_out_by_a_stated_property_its_profile_contradicts():
    assert llm._ruled_out("Hum", _facts(pitch_height="high"))
    assert not llm._ruled_out("hum", _facts(pitch_height="low", loudness_level="loud"))
    assert not llm._ruled_out("hum", _facts())
    assert not llm._ruled_out("banjo", _facts(pitch_height="high"))


def test_the_properties_needed_are_those_of_the_options_or_the_question_in_order():
    assert llm._needed("Is it quiet, and is the pitch rising, and is it quiet?", []) == [
        "loudness_level", "pitch_direction"]
    assert llm._needed("Is it quiet?", ["the pitch rises and it gets louder", "the pitch falls and it sings"]) == [
        "pitch_direction", "loudness_trend"]
    assert llm._needed("Is it quiet?", ["yes", "no"]) == ["loudness_level"]
    assert llm._needed("What is it?", []) == []


def test_a_plan_joins_its_topics_with_then_and_finally():
    assert llm._plan(["a"]) == "a"
    assert llm._plan(["a", "b"]) == "a, and finally b"
    assert llm._plan(["a", "b", "c"]) == "a, then b, and finally c"


class _Script:
    """A stand-in for a generator: ``integers`` returns the scripted values in turn."""

    def __init__(self, *values):
        self.values = list(values)

    def integers(self, n):
        value = self.values.pop(0)
        assert 0 <= value < n
        return value


def test_a_contradicted_sentence_states_another_value_of_its_property_or_a_changed_number():
    assert llm._contradicted("The pitch is rising.", _Script(0)) == "The pitch is falling."
    assert llm._contradicted("The pitch is rising.", _Script(1)) == "The pitch is steady."
    assert llm._contradicted("It is a Tonal sound.", _Script(1)) == "It is a impulsive sound."
    assert llm._contradicted("The sound is quiet overall, at about -35 dB.", _Script(0)) == (
        "The sound is loud overall, at about -35 dB.")
    assert llm._contradicted("The sound lasts about 2.5 seconds.", _Script()) == "The sound lasts about 9.5 seconds."
    assert llm._contradicted("I hear 7 separate events.", _Script()) == "I hear 23 separate events."
    assert llm._contradicted("Nothing to change here.", _Script()) == "Nothing to change here."


def test_the_planted_kind_is_read_from_the_llms_replies_in_the_trace():
    def record(*calls):
        return types.SimpleNamespace(trace=[types.SimpleNamespace(role=r, reply=t) for r, t in calls])

    planted = json.dumps({"reasoning": "x", "planted": "asserted"})
    assert llm.planted_false_reasoning(record(("llm", '{"answer": "yes"}'), ("llm", planted))) == "asserted"
    assert llm.planted_false_reasoning(record(("llm", '{"planted" :  "unsupported"}'))) == "unsupported"
    assert llm.planted_false_reasoning(record(("alm", planted))) is None
    assert llm.planted_false_reasoning(record(("llm", '{"planted": "bogus"}'))) is None
    assert llm.planted_false_reasoning(record(("llm", '{"reasoning": "x"}'))) is None
    assert llm.planted_false_reasoning(record()) is None


# --- ScriptedLlm: each reply kind on the paper's filled prompts ----------------------------------------------------

PITCH = (SUB_QUESTIONS["pitch_direction"], "The pitch is rising.")
QUIETER = (SUB_QUESTIONS["loudness_trend"], "The sound gets quieter towards the end.")
QUIET = (SUB_QUESTIONS["loudness_level"], "The sound is quiet overall, at about -35 dB full scale.")
DARK = (SUB_QUESTIONS["brightness"], "The timbre is dark, with a spectral centroid near 412 Hz.")
YES_NO = "Is the pitch rising, and is it quiet?"
CAPTION = "A quiet tonal sound with a medium pitch that is rising."


def _context(prompts, chain, question=YES_NO):
    return {"caption": CAPTION, "chain": prompts.evidence(chain), "question": question}


def test_an_unknown_request_gets_a_fixed_reply():
    assert ScriptedLlm().reply("Tell me a joke.") == "I am not sure what you are asking for."


@pytest.mark.parametrize("prompts", [PAPER, RELEASE], ids=["paper", "release"])
def test_the_gate_asks_a_sub_question_per_property_when_the_question_needs_two(prompts):
    assert ScriptedLlm().reply(prompts.fill("gate", question=YES_NO)) == json.dumps(
        {"require_step_by_step": 1, "sub_questions": [SUB_QUESTIONS["pitch_direction"],
                                                      SUB_QUESTIONS["loudness_level"]]})
    assert reply(prompts.fill("gate", question="Is it quiet?")) == {"require_step_by_step": 0, "sub_questions": []}
    assert reply(prompts.fill("gate_only", question=YES_NO)) == {"require_step_by_step": 1}
    assert reply(prompts.fill("gate_only", question="Is it quiet?")) == {"require_step_by_step": 0}
    mcq = format_question("How does it change?", ["the pitch rises and it gets louder", "the pitch falls"])
    assert reply(prompts.fill("gate", question=mcq))["sub_questions"] == [SUB_QUESTIONS["pitch_direction"],
                                                                         SUB_QUESTIONS["loudness_trend"]]


@pytest.mark.parametrize("prompts", [PAPER, RELEASE, STRICT], ids=["paper", "release", "strict-perception"])
def test_the_llm_predicts_from_the_chain_and_is_unsure_when_it_is_incomplete(prompts):
    assert reply(prompts.fill("predict", **_context(prompts, [PITCH, QUIET]))) == {"answer": "yes"}
    falling = (PITCH[0], "The pitch is falling.")
    assert reply(prompts.fill("predict", **_context(prompts, [falling, QUIET]))) == {"answer": "no"}
    assert reply(prompts.fill("predict", **_context(prompts, [PITCH]))) == {"answer": "unsure"}
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter"]
    mcq = format_question("How does the sound change?", options)
    assert reply(prompts.fill("predict", **_context(prompts, [PITCH, QUIETER], mcq))) == {"answer": options[1]}


def test_the_llm_classifies_from_the_fits_in_the_chain():
    chain = [(PAPER.fill("describe", label="hum"), leaf_classes()["hum"].description),
             (PAPER.fill("fit", label="hum"), alm.fit("hum", hand(pitch_height="high"))),
             (PAPER.fill("describe", label="whistle"), leaf_classes()["whistle"].description),
             (PAPER.fill("fit", label="whistle"), alm.fit("whistle", hand(pitch_height="high")))]
    context = _context(PAPER, chain, format_question("Classify the sound.", ["hum", "whistle"]))
    assert reply(PAPER.fill("predict", **context)) == {"answer": "whistle"}
    assert reply(PAPER.fill("validate", answer="whistle", **context)) == {"validation": 1}
    assert reply(PAPER.fill("validate", answer="hum", **context)) == {"validation": 0}


@pytest.mark.parametrize("prompts", [PAPER, RELEASE, STRICT], ids=["paper", "release", "strict-perception"])
def test_the_judge_validates_the_ground_truth_against_the_chain(prompts):
    context = _context(prompts, [PITCH, QUIET])
    assert ScriptedLlm().reply(prompts.fill("validate", answer="yes", **context)) == '{"validation": 1}'
    if prompts is RELEASE:  # the release drops an answer's full stop (its prompt adds one)
        assert reply(prompts.fill("validate", answer="yes.", **context)) == {"validation": 1}
    assert reply(prompts.fill("validate", answer="no", **context)) == {"validation": 0}
    assert reply(prompts.fill("validate", answer="yes", **_context(prompts, [PITCH]))) == {"validation": 0}
    loud = (QUIET[0], "The sound is loud overall, at about -15 dB full scale.")
    assert reply(prompts.fill("validate", answer="no", **_context(prompts, [loud]))) == {"validation": 1}
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter"]
    mcq = _context(prompts, [PITCH, QUIETER], format_question("How does the sound change?", options))
    assert reply(prompts.fill("validate", answer=options[1], **mcq)) == {"validation": 1}
    assert reply(prompts.fill("validate", answer=options[0], **mcq)) == {"validation": 0}


@pytest.mark.parametrize("prompts", [PAPER, RELEASE], ids=["paper", "release"])
def test_the_followup_answers_when_decided_else_asks_for_the_next_property_not_yet_asked(prompts):
    def ask(chain):
        return reply(prompts.fill("followup", caption=CAPTION, chain=prompts.evidence(chain), question=YES_NO))

    assert ask([PITCH, QUIET]) == {"answer": "yes", "followup": ""}
    assert ask([]) == {"answer": "unsure", "followup": SUB_QUESTIONS["pitch_direction"]}
    assert ask([PITCH]) == {"answer": "unsure", "followup": SUB_QUESTIONS["loudness_level"]}
    assert ask([QUIET]) == {"answer": "unsure", "followup": SUB_QUESTIONS["pitch_direction"]}
    # both asked, one answer useless: nothing left to ask
    assert ask([PITCH, (QUIET[0], "I cannot tell that from the audio.")]) == {"answer": "unsure", "followup": ""}


def test_the_followup_on_statement_options_asks_for_the_properties_the_options_name():
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter"]
    mcq = format_question("How does the sound change?", options)

    def ask(chain):
        return reply(PAPER.fill("followup", caption=CAPTION, chain=PAPER.evidence(chain), question=mcq))

    assert ask([PITCH]) == {"answer": "unsure", "followup": SUB_QUESTIONS["loudness_trend"]}
    assert ask([PITCH, QUIETER]) == {"answer": options[1], "followup": ""}


def _discriminate(chain, labels):
    return reply(PAPER.fill("discriminate", caption=CAPTION, chain=PAPER.evidence(chain),
                            labels=PAPER.bullets(labels)))


def test_discrimination_asks_the_property_that_splits_the_labels_then_drops_the_contradicted():
    assert _discriminate([], ["hum", "whistle"]) == {
        "remaining": ["hum", "whistle"], "answer": "unsure", "followup": SUB_QUESTIONS["pitch_height"]}
    high = (SUB_QUESTIONS["pitch_height"], "The pitch is high, around 1800 Hz.")
    assert _discriminate([high], ["hum", "whistle"]) == {"remaining": ["whistle"], "answer": "whistle",
                                                         "followup": ""}
    # three tonal labels: texture does not split them; pitch direction splits them in three
    assert _discriminate([], ["hum", "rising chirp", "falling chirp"])["followup"] == SUB_QUESTIONS[
        "pitch_direction"]
    steady = (SUB_QUESTIONS["pitch_direction"], "The pitch is steady.")
    assert _discriminate([steady], ["hum", "rising chirp", "chime"]) == {
        "remaining": ["hum", "chime"], "answer": "unsure", "followup": SUB_QUESTIONS["pitch_height"]}
    # a property already asked is not asked again
    assert _discriminate([(high[0], "I cannot tell that from the audio.")], ["hum", "whistle"]) == {
        "remaining": ["hum", "whistle"], "answer": "unsure", "followup": ""}


def test_discrimination_with_every_property_asked_stops_asking():
    chain = [(q, "I cannot tell that from the audio.") for q in SUB_QUESTIONS.values()]
    assert _discriminate(chain, ["hum", "whistle"]) == {"remaining": ["hum", "whistle"], "answer": "unsure",
                                                        "followup": ""}


def test_discrimination_keeps_every_label_when_the_answers_rule_out_all_of_them():
    dark = (SUB_QUESTIONS["texture"], "It is a noise-like sound without a clear pitch.")
    assert _discriminate([dark], ["hum", "whistle"])["remaining"] == ["hum", "whistle"]
    assert _discriminate([], ["banjo", "kazoo"]) == {"remaining": ["banjo", "kazoo"], "answer": "unsure",
                                                     "followup": ""}


def _causality(reasoning, question, choices=None):
    return reply(PAPER.fill("causality", reasoning=reasoning, question=format_question(question, choices)))


def test_the_causality_check_answers_from_the_reasoning_text_alone():
    assert _causality("First, the pitch is rising. Finally, the sound is quiet overall.", YES_NO) == {"answer": "yes"}
    assert _causality("Is the pitch rising? Is it quiet?", YES_NO) == {"answer": "unsure"}  # questions state nothing
    options = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter"]
    assert _causality("The pitch is rising. The sound gets louder towards the end.", "How?", options) == {
        "answer": options[0]}
    # the reasoning names one option: that is its answer
    assert _causality("So the answer is the pitch rises and it gets quieter.", "How?", options) == {
        "answer": options[1]}
    assert _causality("Either the pitch rises and it gets louder or the pitch rises and it gets quieter.", "How?",
                      options) == {"answer": "unsure"}
    # labels: what the reasoning leaves
    assert _causality("The pitch is low, around 200 Hz.", "Classify the sound.", ["hum", "whistle", "chime"]) == {
        "answer": "hum"}
    assert _causality("It is a tonal sound with a clear pitch.", "Classify the sound.", ["hum", "whistle"]) == {
        "answer": "unsure"}
    assert _causality("It sounds like a Whistle to me.", "Classify the sound.", ["hum", "whistle"]) == {
        "answer": "whistle"}


def test_the_causality_check_takes_the_best_fit_a_reasoning_states_before_the_labels_it_leaves():
    # the reasoning of Algorithm 8 states fits; a fit decides even where a stated property would leave another label
    text = "The sound fits 'hum' on 4 of 4 properties. The pitch is high, around 1800 Hz."
    assert _causality(text, "Classify the sound.", ["hum", "whistle"]) == {"answer": "hum"}
    m = hand(pitch_height="high")
    alg8 = " ".join(f"{leaf_classes()[label].description} {alm.fit(label, m)}" for label in ("hum", "whistle"))
    assert _causality(alg8, "Classify the sound.", ["hum", "whistle"]) == {"answer": "whistle"}


@pytest.mark.parametrize("prompts", [PAPER, RELEASE, STRICT], ids=["paper", "release", "strict-perception"])
def test_the_summary_plans_the_checks_of_the_sub_questions(prompts):
    def ask(subs, bot=None):
        return reply(prompts.fill("summary", question=YES_NO, sub_questions=prompts.bullets(subs)), bot)["summary"]

    subs = [SUB_QUESTIONS["pitch_direction"], SUB_QUESTIONS["loudness_level"], "Is it a dog?"]
    assert ask(subs) == (f"The question asks: {YES_NO} To answer it, I will first check whether the pitch rises, "
                         "falls or stays steady, then how loud the sound is, and finally the answer to 'Is it a "
                         "dog?'.")
    assert ask(subs[1:2], ScriptedLlm(lambda o: o[1])) == (
        f"The question wants to determine: {YES_NO} I will start by checking how loud the sound is.")
    assert ask(subs[:2], ScriptedLlm(lambda o: o[2])) == (
        f"To answer the question ({YES_NO}) I will listen for whether the pitch rises, falls or stays steady, and "
        "finally how loud the sound is.")


@pytest.mark.parametrize("prompts", [PAPER, RELEASE, STRICT], ids=["paper", "release", "strict-perception"])
def test_the_reasoning_refines_the_useful_answers_into_steps(prompts):
    def ask(chain, bot=None):
        return reply(prompts.fill("reasoning", question=YES_NO, chain=prompts.listing(chain)), bot)

    caption = (CAPTION_Q, CAPTION)
    useless = (SUB_QUESTIONS["texture"], "I cannot tell that from the audio.")
    assert ask([caption, PITCH, useless, QUIET]) == {"reasoning": (
        "First, the pitch is rising. Finally, the sound is quiet overall, at about -35 dB full scale. Combining "
        "these observations answers the question.")}
    assert ask([caption, QUIET]) == {"reasoning": (
        "Listening closely, the sound is quiet overall, at about -35 dB full scale. Combining these observations "
        "answers the question.")}
    assert ask([caption, useless]) == {"reasoning": "The audio gives no usable evidence."}
    second = ScriptedLlm(lambda o: o[-1])
    assert ask([caption, PITCH, QUIET, DARK], second) == {"reasoning": (
        "To begin with, the pitch is rising. After that, the sound is quiet overall, at about -35 dB full scale. "
        "Lastly, the timbre is dark, with a spectral centroid near 412 Hz. Taken together, these observations "
        "answer the question.")}


def test_written_reasoning_counts_its_steps_and_keeps_the_fourth_word_after_that():
    text = ScriptedLlm().written([f"Fact {i}." for i in range(6)])
    assert text == ("First, fact 0. Next, fact 1. Then, fact 2. Also, fact 3. Also, fact 4. Finally, fact 5. "
                    "Combining these observations answers the question.")
    assert ScriptedLlm().written([], " Done.") == "Listening closely, the clip plays from its start to its end. Done."
    assert llm._sentence("  The pitch is rising.  ") == "the pitch is rising"
    assert llm._sentence("") == ""
    assert llm._sentence("Turn it up to MAX.") == "turn it up to MAX"  # only the full stop goes


@pytest.mark.parametrize("prompts", [PAPER, RELEASE], ids=["paper", "release"])
def test_the_interactive_reasoning_says_what_the_chain_points_to(prompts):
    def ask(chain, bot=None):
        return reply(prompts.fill("reasoning_interactive", question=YES_NO, answer="yes",
                                  chain=prompts.listing(chain)), bot)["reasoning"]

    assert ask([(CAPTION_Q, CAPTION), PITCH, QUIET]) == (
        "Together, what I heard about whether the pitch rises, falls or stays steady, and finally how loud the sound "
        "is points to yes.")
    assert ask([(CAPTION_Q, CAPTION), PITCH, QUIET], ScriptedLlm(lambda o: o[1])) == (
        "These observations about whether the pitch rises, falls or stays steady, and finally how loud the sound is "
        "single out yes.")
    assert ask([(CAPTION_Q, CAPTION), ("Is it a dog?", "No.")], ScriptedLlm(lambda o: o[1])) == (
        "These observations about the sound single out yes.")
    assert ask([(CAPTION_Q, CAPTION)]) == "Together, what I heard about the sound points to yes."
    assert ask([(CAPTION_Q, CAPTION)], ScriptedLlm(lambda o: o[1])) == (
        "These observations about the sound single out yes.")


def test_distractors_are_close_negatives_seeded_by_the_answer():
    from afcot_negatives.llm import render_prompt

    expected = close_negatives("hum", np.random.default_rng(zlib.crc32(b"hum")))
    assert expected == ["whistle", "chime", "pluck"]
    assert reply(render_prompt("Classify the sound.", "hum")) == {"distractors": expected}
    assert reply(render_prompt("Classify the sound.", "Hum")) == {"distractors": expected}
    assert reply(render_prompt("Is it loud?", "yes")) == {"distractors": []}


# --- planted false reasoning --------------------------------------------------------------------------------------

def _reasoning_prompt(chain, question=YES_NO):
    return PAPER.fill("reasoning", question=question, chain=PAPER.listing([(CAPTION_Q, CAPTION), *chain]))


def _planted(kind_index, *more, chain=(PITCH, QUIET, DARK), question=YES_NO):
    bot = ScriptedLlm(falsify=_Script(kind_index, *more))
    return reply(_reasoning_prompt(list(chain), question), bot)


def test_planted_contradicted_reasoning_states_other_values_than_the_chain():
    assert _planted(0, 0, 0, 1) == {"planted": "contradicted", "reasoning": (
        "First, the pitch is falling. Next, the sound is loud overall, at about -35 dB full scale. Finally, the "
        "timbre is balanced, with a spectral centroid near 412 Hz. Combining these observations answers the "
        "question.")}


def test_planted_reasoning_that_still_decides_the_answer_is_left_unsupported_instead():
    falling = (PITCH[0], "The pitch is falling.")
    # "no" stays the answer when the pitch is said to be steady: the contradiction is dropped
    assert _planted(0, 1, 0, 0, chain=(falling, QUIET, DARK)) == {"planted": "unsupported", "reasoning": (
        "Listening closely, the timbre is dark, with a spectral centroid near 412 Hz. Combining these observations "
        "answers the question.")}


def test_planted_unsupported_and_asserted_reasoning_leave_out_the_decisive_statements():
    assert _planted(1) == {"planted": "unsupported", "reasoning": (
        "Listening closely, the timbre is dark, with a spectral centroid near 412 Hz. Combining these observations "
        "answers the question.")}
    assert _planted(2) == {"planted": "asserted", "reasoning": (
        "Listening closely, the timbre is dark, with a spectral centroid near 412 Hz. So the answer is yes.")}
    assert _planted(2, chain=(PITCH, QUIET)) == {"planted": "asserted", "reasoning": (
        "Listening closely, the clip plays from its start to its end. So the answer is yes.")}


MCQ = ["the pitch rises and it gets louder", "the pitch rises and it gets quieter", "the pitch falls and it gets "
       "louder"]
COUNT = (SUB_QUESTIONS["event_count"], "I hear 7 separate events.")


def test_planted_reasoning_on_statement_options_asserts_the_option_the_chain_gives():
    question = format_question("How does the sound change?", MCQ)
    assert _planted(2, chain=(PITCH, QUIETER, DARK), question=question) == {"planted": "asserted", "reasoning": (
        "Listening closely, the timbre is dark, with a spectral centroid near 412 Hz. So the answer is the pitch "
        "rises and it gets quieter.")}
    assert _planted(0, 0, 0, 0, chain=(PITCH, QUIETER, DARK), question=question) == {
        "planted": "contradicted", "reasoning": (
            "First, the pitch is falling. Next, the sound gets louder towards the end. Finally, the timbre is bright, "
            "with a spectral centroid near 412 Hz. Combining these observations answers the question.")}


def test_a_changed_count_that_still_decides_the_option_is_left_out_instead():
    question = format_question("How many are there?", ["there are more than 5 separate events",
                                                       "there are fewer than 5 separate events"])
    # 7 events become 23, still more than 5: the contradiction would not change the answer
    assert _planted(0, 0, chain=(COUNT, DARK), question=question) == {"planted": "unsupported", "reasoning": (
        "Listening closely, the timbre is dark, with a spectral centroid near 412 Hz. Combining these observations "
        "answers the question.")}
    eight = format_question("How many are there?", ["there are more than 8 separate events",
                                                    "there are fewer than 8 separate events"])
    assert _planted(0, 0, chain=(COUNT, DARK), question=eight)["planted"] == "contradicted"


def test_nothing_is_planted_when_the_chain_decides_nothing():
    assert _planted(2, chain=(PITCH, DARK)) == {"reasoning": (
        "First, the pitch is rising. Finally, the timbre is dark, with a spectral centroid near 412 Hz. Combining "
        "these observations answers the question.")}


# --- EmbeddedLlm -------------------------------------------------------------------------------------------------

def test_the_llm_config_defaults_to_qwen3_thinking_sampling_and_no_planted_reasoning():
    config = EmbeddedLlmConfig()
    assert (config.temperature, config.top_p, config.top_k, config.false_reasoning) == (0.6, 0.95, 20, 0.0)
    assert (config.batching.max_batch, config.batching.max_wait_ms) == (64, 2.0)
    teacher = EmbeddedLlm(config)
    assert (teacher.role, teacher.model, teacher.offload, teacher.sampling) == ("llm", "embedded-llm", False, config)
    assert teacher.batching is config.batching and teacher.sampled
    assert not EmbeddedLlm(EmbeddedLlmConfig(temperature=0.0)).sampled


@pytest.mark.parametrize("share", [-0.01, 1.01, 2.0])
def test_a_share_of_planted_reasoning_outside_0_to_1_is_refused_by_name(share):
    with pytest.raises(ValueError, match=r"^false_reasoning must be between 0 and 1$"):
        EmbeddedLlmConfig(false_reasoning=share)


def test_a_share_of_planted_reasoning_at_the_edges_is_accepted():
    assert EmbeddedLlmConfig(false_reasoning=0.0).false_reasoning == 0.0
    assert EmbeddedLlmConfig(false_reasoning=1.0).false_reasoning == 1.0


def test_the_llm_samples_its_phrasing_from_the_request_seed():
    teacher = EmbeddedLlm(EmbeddedLlmConfig())
    prompt = PAPER.fill("summary", question=YES_NO, sub_questions=PAPER.bullets([SUB_QUESTIONS["pitch_direction"]]))
    replies = [json.loads(r)["summary"] for r in teacher.generate([Request(prompt, seed=s) for s in range(40)])]
    assert {r.split(" ")[2] for r in replies} == {"asks:", "wants"}  # top_p 0.95 keeps two of three phrasings
    assert [json.loads(r)["summary"] for r in teacher.generate([Request(prompt, seed=s) for s in range(40)])] == (
        replies)
    greedy = EmbeddedLlm(EmbeddedLlmConfig(temperature=0.0))
    assert {greedy.generate([Request(prompt, seed=s)])[0] for s in range(10)} == {
        json.dumps({"summary": f"The question asks: {YES_NO} To answer it, I will first check whether the pitch "
                               "rises, falls or stays steady."})}


def _prompts(n):
    return [_reasoning_prompt([PITCH, QUIET, (DARK[0], f"The timbre is dark, with a spectral centroid near {400 + i} "
                                                      "Hz.")]) for i in range(n)]


def test_the_llm_plants_false_reasoning_in_about_its_configured_share_of_requests():
    prompts = _prompts(300)
    teacher = EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=0.25))
    replies = [json.loads(r) for r in teacher.generate([Request(p, seed=7) for p in prompts])]
    planted = [r["planted"] for r in replies if "planted" in r]
    assert 0.18 <= len(planted) / len(replies) <= 0.32
    assert set(planted) == {"contradicted", "unsupported", "asserted"}
    assert not any("planted" in json.loads(r) for r in EmbeddedLlm(EmbeddedLlmConfig()).generate(
        [Request(p, seed=7) for p in prompts]))
    everywhere = EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=1.0)).generate([Request(p, seed=7) for p in prompts])
    assert all("planted" in json.loads(r) for r in everywhere)


def test_which_requests_get_planted_reasoning_is_seeded_by_the_request_seed_and_prompt():
    prompts = _prompts(40)

    def drawn(teacher, seed):
        return [i for i, p in enumerate(prompts) if teacher._falsify(Request(p, seed=seed)) is not None]

    teacher = EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=0.3))
    first = drawn(teacher, 1)
    assert first == drawn(EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=0.3)), 1)
    assert first != drawn(teacher, 2)
    assert first == [i for i, p in enumerate(prompts)
                     if np.random.default_rng([1, zlib.crc32(p.encode()), 0xFA15E]).random() < 0.3]
    # a request without a seed uses the config's
    seeded = EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=0.3, seed=1))
    assert drawn(seeded, None) == first != drawn(teacher, None)
    assert drawn(EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=0.0)), 1) == []


def test_the_planted_draw_continues_the_generator_that_chose_the_request():
    teacher = EmbeddedLlm(EmbeddedLlmConfig(false_reasoning=1.0))
    prompt = _prompts(1)[0]
    rng = teacher._falsify(Request(prompt, seed=3))
    expected = np.random.default_rng([3, zlib.crc32(prompt.encode()), 0xFA15E])
    expected.random()
    assert rng.integers(1000) == expected.integers(1000)


# --- plugin.py ---------------------------------------------------------------------------------------------------

def test_the_plugin_registers_the_corpus_and_both_teachers():
    from afcot_embedded import plugin
    from afcot_embedded.source import EmbeddedSource, EmbeddedSourceConfig

    calls = []
    for hook in (plugin.register_sources, plugin.register_teacher_alms, plugin.register_teacher_llms):
        hook(lambda *args: calls.append(args))
    assert calls == [
        ("embedded", EmbeddedSource, EmbeddedSourceConfig,
         "procedural sound corpus (3-level class hierarchy, 14 leaves) with AQA and classification items"),
        ("embedded-alm", EmbeddedAlm, EmbeddedAlmConfig,
         "reference ALM answering from DSP measurements of the waveform (no weights)"),
        ("embedded-llm", EmbeddedLlm, EmbeddedLlmConfig,
         "scripted reference LLM for the embedded question grammar (never hears audio)")]
    assert len(leaf_classes()) == 14  # as the description says


def test_the_registered_teachers_are_built_from_their_configs(plugins):
    for role, name, cls in (("teacher_alm", "embedded-alm", EmbeddedAlm), ("teacher_llm", "embedded-llm",
                                                                          EmbeddedLlm)):
        registration = plugins.registry(role).get(name)
        assert isinstance(registration.build(registration.config()), cls)
