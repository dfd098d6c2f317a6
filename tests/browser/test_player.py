"""The player in Chromium, for every provider: play, seek, speed, keyboard; and the transcript that seeks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from .helpers import PROVIDERS, screenshot, wait_for

TIME = "a => a.currentTime"
STATE = "a => ({time: a.currentTime, paused: a.paused, rate: a.playbackRate, muted: a.muted})"


def open_player(page: Page, call: int, recording: int) -> tuple[Locator, Locator]:
    page.goto(f"/calls/{call}/")
    player = page.locator(f'section[data-player][data-recording-id="{recording}"]')
    expect(player).to_have_attribute("data-player-ready", "")
    expect(player.locator("[data-player-controls]")).to_be_visible()
    return player, player.locator("audio[data-player-audio]")


def near(expected: float, tolerance: float = 0.3):
    return lambda t: abs(t - expected) <= tolerance


def format_time(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_it_plays_seeks_changes_speed_and_answers_the_keys(open_as, demo, provider):
    played = demo.playable[provider]
    page = open_as("supervisor")
    player, audio = open_player(page, played.call, played.recording)
    play = player.locator('button[data-action="play"]')
    seek = player.locator("input[data-player-seek]")
    speed = player.locator("select[data-player-speed]")
    expect(play).to_have_attribute("aria-label", "Play")

    # Play: the audio's clock advances, through the portal's audio route.
    play.click()
    expect(player).to_have_attribute("data-state", "playing")
    expect(play).to_have_attribute("aria-label", "Pause")
    wait_for(audio, TIME, lambda t: t > 1.0, f"{provider}: playback does not advance")
    assert audio.evaluate("a => new URL(a.currentSrc).pathname") == f"/recordings/{played.recording}/audio"
    expect(player.locator("[data-player-error]")).to_be_empty()
    duration = float(seek.get_attribute("max"))
    assert abs(duration - audio.evaluate("a => a.duration")) < 0.05, "the seek bar does not span the recording"
    # The lengths the providers state are close to the media's, not exact (the sandbox's Envoy is 2 s out).
    assert abs(duration - played.duration) < played.duration * 0.1, (duration, played.duration)
    expect(player.locator("[data-player-duration]")).to_have_text(format_time(duration))

    # Seek to the middle with the seek bar: playback continues from there.
    box = seek.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    landed = wait_for(audio, TIME, near(duration / 2, duration * 0.06), f"{provider}: the seek bar did not seek")
    wait_for(audio, STATE, lambda s: s["time"] > landed + 1.0 and not s["paused"], f"{provider}: stopped after seeking")
    minutes, seconds = player.locator("[data-player-elapsed]").inner_text().split(":")
    assert abs(int(minutes) * 60 + int(seconds) - audio.evaluate(TIME)) < 2, "the elapsed time is not shown"

    # Speed: the select sets the audio's rate.
    speed.select_option("1.5")
    wait_for(audio, "a => a.playbackRate", lambda r: r == 1.5, f"{provider}: the speed did not change")

    # Keyboard shortcuts, with the focus out of the select (keys typed into form fields are theirs).
    page.get_by_role("heading", level=1).click()
    page.keyboard.press("k")
    expect(player).to_have_attribute("data-state", "paused")
    here = audio.evaluate(TIME)
    page.keyboard.press("ArrowRight")
    wait_for(audio, TIME, near(here + 10), f"{provider}: → did not skip forward")
    page.keyboard.press("j")
    wait_for(audio, TIME, near(here), f"{provider}: J did not skip back")
    page.keyboard.press("l")
    wait_for(audio, TIME, near(here + 10), f"{provider}: L did not skip forward")
    page.keyboard.press("ArrowLeft")
    wait_for(audio, TIME, near(here), f"{provider}: ← did not skip back")
    page.keyboard.press("2")
    wait_for(audio, TIME, near(duration * 0.2), f"{provider}: 2 did not jump to 20 %")
    page.keyboard.press("0")
    wait_for(audio, TIME, near(0), f"{provider}: 0 did not jump to the start")
    for key, rate in [(">", 1.75), ("]", 2), ("[", 1.75), ("<", 1.5)]:
        page.keyboard.press(key)
        wait_for(audio, "a => a.playbackRate", lambda r, rate=rate: r == rate, f"{provider}: {key} did not set {rate}")
        expect(speed).to_have_value(str(rate))
    page.keyboard.press("m")
    expect(player.locator('button[data-action="mute"]')).to_have_attribute("aria-pressed", "true")
    assert audio.evaluate("a => a.muted")
    page.keyboard.press("m")
    expect(player.locator('button[data-action="mute"]')).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("5")
    wait_for(audio, TIME, near(duration * 0.5), f"{provider}: 5 did not jump to 50 %")
    page.keyboard.press("Space")
    expect(player).to_have_attribute("data-state", "playing")
    state = wait_for(audio, STATE, lambda s: s["time"] > duration * 0.5 + 1, f"{provider}: Space did not play")
    assert state == {"time": state["time"], "paused": False, "rate": 1.5, "muted": False}, state


def test_it_seeks_to_a_transcript_segment_when_clicked_and_highlights_it(open_as, demo):
    played, segments = demo.transcribed, demo.segments
    page = open_as("supervisor")
    player, audio = open_player(page, played.call, played.recording)
    buttons = player.locator("[data-transcript] button[data-segment]")
    expect(buttons).to_have_count(len(segments))
    expect(player.locator("[data-segment].is-current")).to_have_count(0)

    # A segment from the middle, followed by another one soon after.
    index = next(i for i, s in enumerate(segments) if s["start"] >= 10 and segments[i + 1]["start"] - s["start"] < 8)
    segment, following = buttons.nth(index), buttons.nth(index + 1)
    start = segments[index]["start"]
    expect(segment.locator("time")).to_have_text(format_time(start))
    expect(segment).to_contain_text(segments[index]["text"])

    segment.click()
    expect(player).to_have_attribute("data-state", "playing")
    wait_for(audio, TIME, lambda t: start - 0.1 <= t < start + 3, f"the audio did not jump to {start} s")
    expect(segment).to_have_class(re.compile(r"\bis-current\b"))
    expect(segment).to_have_attribute("aria-current", "true")
    expect(player.locator("[data-segment].is-current")).to_have_count(1)

    # As it plays on, the highlight follows to the next segment.
    expect(following).to_have_class(re.compile(r"\bis-current\b"), timeout=15_000)
    expect(segment).not_to_have_attribute("aria-current", "true")
    expect(player.locator('[data-segment][aria-current="true"]')).to_have_count(1)
    wait_for(audio, TIME, lambda t: t >= segments[index + 1]["start"], "the audio is behind the highlight")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "call")

    # An earlier segment: back there, and the highlight with it.
    buttons.nth(1).click()
    wait_for(audio, TIME, lambda t: segments[1]["start"] - 0.1 <= t < segments[2]["start"], "no jump back")
    expect(buttons.nth(1)).to_have_attribute("aria-current", "true")
    expect(player.locator("[data-segment].is-current")).to_have_count(1)
