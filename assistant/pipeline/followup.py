"""Follow-up questions rewritten into standalone ones, from the conversation before them.

"When did it join?" after "Which platform did the ministry join?" → "When did the ministry
join?": a pronoun becomes its antecedent, from the previous answers and questions (most
recent first), unless the question itself names what it means ("Where should applications
install their files?"). A question that leans on the conversation or is too short to stand
alone, and still names nothing, gets the conversation's topic in brackets, within
``MAX_EXTRA_WORDS`` words: enough for retrieval to stay with the same document, never the
whole history. Rules over text, no model: a rule's rewrite can be
checked and explained, and the bundled model's own rewrites were rarely accepted
(docs/answers.md).
"""

from __future__ import annotations

import re

from assistant.pipeline.documents import intent
from assistant.pipeline.question import analyse
from assistant.pipeline.spans import CALENDAR_WORD
from index.text.terms import STOPWORDS, terms

MAX_EXTRA_WORDS = 12  # a rewrite is at most twice the question's words plus this many
ELLIPTIC_WORDS = 3  # a question this short that names nothing gets the conversation's topic
HISTORY_TURNS = 6  # messages looked back at

_PERSONAL = {"he": "", "him": "", "his": "'s", "she": "", "her": "", "hers": "'s", "himself": "", "herself": ""}
_THING = {"it": "", "its": "'s", "itself": ""}
_PLURAL = {"they": "", "them": "", "their": "'s", "theirs": "'s", "themselves": ""}
_PRONOUN = re.compile(r"\b(" + "|".join(sorted({**_PERSONAL, **_THING, **_PLURAL}, key=len, reverse=True))
                      + r")\b", re.I)
_BARE_DEMONSTRATIVE = re.compile(r"\b(this|that|these|those)\b(?!\s+[a-z]+\b(?<!\bis\b))", re.I)
# "there" as a place ("What happened there?"), not the existential one ("Is there a template ...?")
_THERE_THEN = re.compile(r"\bthen\b|(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b"
                         r"(?!\s+(?:is|are|was|were|be|been|exists?|remains?|seems?)\b)", re.I)
_NAME = re.compile(r"(?<![\w’'])(?:[A-Z][\w’'-]*)(?:\s+(?:of|the|de|von|van|and)?\s*[A-Z][\w’'-]*)*")
_NOUN_PHRASE = re.compile(r"\b(?:the|a|an|this|that|his|her|their|its)\s+((?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*)",
                          re.I)
_AUXILIARY_BEFORE = re.compile(r"\b(did|does|do|will|would|can|could|should|might|may|must)\s+$", re.I)
_ADJECTIVES = set("old young new little big small first last other next same whole great good bad long "
                  "short tall poor rich".split())
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do", "is",
       "was", "were", "are", "can", "could", "would", "will", "and", "but", "so", "the", "a", "an", "in",
       "on", "at", "for", "yes", "no", "ok", "okay", "i", "a", "also", "then"}
# Capitalised only because they start a sentence or an answer ("Fifty years ago", "Yes").
_COMMON_STARTS = _WH | STOPWORDS | set(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million first second third last next many some most several yes no "
    "not never always sometimes because after before during since until while although however yesterday "
    "today tomorrow".split())


def leans(question: str) -> bool:
    """The question has a word that points back: a pronoun, "there", "then", a bare "this"."""
    return bool(_PRONOUN.search(question) or _THERE_THEN.search(question) or _BARE_DEMONSTRATIVE.search(question))


def needs_rewrite(question: str) -> bool:
    """A follow-up leans on the conversation: it has a pronoun, or names almost nothing."""
    return leans(question) or len(analyse(question).terms) <= 1


def elliptic(question: str) -> bool:
    """A question too short to stand alone ("Why?", "What year?", "Which one?"): at most
    ``ELLIPTIC_WORDS`` words, none of them a longer word that says what it asks about
    ("What is decentralization?"), and not about a document as a whole ("Summarize it.")."""
    return (len(question.split()) <= ELLIPTIC_WORDS and intent(question) is None
            and all(len(t) <= 5 for t in terms(question)))


def _plural(phrase: str) -> bool:
    """Looks like more than one thing: "applications", "Sam and Tom", "the Stanhopes"."""
    last = phrase.split()[-1].lower().strip(".,;!?'’") if phrase.split() else ""
    return " and " in phrase or (len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")))


def refers_inside(question: str, start: int, pronoun: str) -> bool:
    """The pronoun at ``start`` means something the question itself names before it: "their"
    after "applications" ("Where should applications install their ...?"), "it" after "the
    tower", "his" after a name. Such a question names its own subject and is not rewritten."""
    before = question[:start]
    p = pronoun.lower()
    if p in _PLURAL:
        words = [w for w in re.findall(r"[A-Za-z][\w’'-]*", before) if w.lower() not in _WH | STOPWORDS]
        return any(_plural(w) for w in words) or any(_plural(n) for n in _names(before))
    if p in _PERSONAL:
        return bool(_names(before))
    return bool(_names(before) or _phrases(before))


def _fits(found: str, pronoun: str) -> bool:
    """An antecedent agrees with its pronoun in number: "they" wants a plural, "it" a single thing."""
    p = pronoun.lower()
    if p in _PLURAL:
        return _plural(found)
    return p not in _THING or not _plural(found) or found[:1].isupper()


def _names(text: str) -> list[str]:
    """Capitalised runs of ``text`` that are names, not a sentence's first word alone."""
    out = []
    for m in _NAME.finditer(text):
        name = m.group().strip()
        words = name.split()
        while words and words[0].lower() in _WH | STOPWORDS:
            words = words[1:]
        if not words or not terms(" ".join(words)):
            continue
        if len(words) == 1 and words[0].lower() in _COMMON_STARTS:
            continue
        at_start = m.start() == 0 or text[:m.start()].rstrip()[-1:] in ".?!:\"“"
        if len(words) == 1 and at_start and not re.search(rf"[\w,;] {re.escape(words[0])}\b", text):
            continue  # "Tell me about ...": capitalised because it starts a sentence
        out.append(" ".join(words))
    return out


def _phrases(text: str) -> list[str]:
    """Noun phrases introduced by an article or possessive ("the ministry", "a mouse").

    After "did", "will", "can" … the phrase is the subject and a verb follows it ("did the
    ministry join", "did the old man ask"): one noun, or two after a common adjective.
    """
    out = []
    for m in _NOUN_PHRASE.finditer(text):
        words = [w for w in m.group(1).split() if w.lower() not in STOPWORDS]
        if _AUXILIARY_BEFORE.search(text[:m.start()]):
            words = words[:2] if words and words[0].lower() in _ADJECTIVES else words[:1]
        if words and not any(w.lower() in _WH for w in words):
            out.append("the " + " ".join(words))
    return out


def check_history(history) -> list[dict]:
    """The conversation as given, or a ``ValueError`` saying what is wrong with it.

    A conversation is a list of ``{"role": "user" | "assistant", "content": text}``
    messages, oldest first; a message without content is allowed (and skipped), and a
    role's case does not matter ("User").
    """
    if history is None:
        return []
    if not isinstance(history, (list, tuple)):
        raise ValueError("history must be a list of {'role': ..., 'content': ...} messages, "
                         f"not {type(history).__name__}")
    for i, m in enumerate(history):
        if not isinstance(m, dict) or not isinstance(m.get("content", ""), (str, type(None))):
            raise ValueError(f"history[{i}] must be a {{'role': ..., 'content': text}} message, "
                             f"not {m!r:.80}")
    return [{**m, "role": str(m.get("role") or "").lower()} for m in history]


def _turns(history: list[dict]) -> list[tuple[str, str]]:
    """(role, text) of the recent messages, most recent first."""
    recent = [m for m in history if m.get("content")][-HISTORY_TURNS:]
    return [(m.get("role", ""), plain(m["content"])) for m in reversed(recent)]


def plain(content) -> str:
    """A message's text without citation markers or the "understood as" line the chat adds."""
    text = content if isinstance(content, str) else str(content)
    text = re.sub(r"\[\d+\]", " ", text)  # citation markers
    text = text.split("\n\n(understood as:")[0]
    return " ".join(text.split())


def antecedent(pronoun: str, history: list[dict]) -> str | None:
    """What a pronoun most likely refers to: for "he"/"she", the latest name; for "it"/"they",
    the latest name or noun phrase of a question, else of an answer."""
    p = pronoun.lower()
    turns = _turns(history)
    if p in _PERSONAL:
        for _, text in turns:
            names = [n for n in _names(text) if len(n.split()) <= 4 and " and " not in n]
            if names:
                return names[0] if len(names) == 1 else max(names, key=lambda n: (len(n.split()) > 1, -text.find(n)))
        return None
    for i, (role, text) in enumerate(turns):
        if role == "user":
            found = [f for f in _names(text) + _phrases(text) if _fits(f, p)]
            if found:
                return found[0]
        else:
            question = next((t for r, t in turns[i + 1:] if r == "user"), "")
            if _names_a_thing(text, question, plural=p in _PLURAL):
                return text.rstrip(".!,;")
    return None


_NOT_A_THING = re.compile(
    r"^\W*(yes|no|unknown|not|to|so|because|by|when|while|after|before|since|until|about|on|in|at|into|with|"
    r"for|from|through|under|over|near|very|too|just|only|\w+ing)\b|"
    r"\b(days?|weeks?|months?|years?|hours?|minutes?|seconds?|o'clock|ago|morning|evening|night|early|late|"
    r"\w+n't|he's|she's|it's|that's|they're|\d+)\b", re.I)


def _names_a_thing(answer: str, question: str, plural: bool) -> bool:
    """Whether a short answer is itself the thing a later "it"/"they" means ("a fish" after
    "What did she decide to get?"), not a time, a place, a yes or a clause ("a week", "on
    his shoulder", "yes", "keep them all night"): only an answer to a what/which question
    (or, for "they", a who question), at most six words, with "they" also a plural ("the
    Stanhopes", "Sam and Tom")."""
    words = answer.split()
    if not words or len(words) > 6 or not terms(answer) or _NOT_A_THING.search(answer):
        return False
    if not re.match(r"^\W*(\w+\s+)?(what|which|who|whom)\b", question, re.I):
        return False
    if not plural and re.match(r"^\W*(\w+\s+)?(who|whom)\b", question, re.I):
        return False  # "it" is not the person a "who" question was answered with
    if plural:
        last = words[-1].lower().strip(".,;!")
        return " and " in answer or (last.endswith("s") and not last.endswith(("ss", "us", "is")))
    return True


def topic(history: list[dict], exclude: set[str]) -> list[str]:
    """Names the conversation is about, most frequent and recent first (not those in ``exclude``)."""
    score: dict[str, float] = {}
    for age, (_, text) in enumerate(_turns(history)):
        for name in _names(text):
            key = name
            if set(terms(name)) <= exclude or CALENDAR_WORD.fullmatch(name) or any(ch.isdigit() for ch in name):
                continue  # "Monday" or "1871" is what was answered, not what the talk is about
            score[key] = score.get(key, 0.0) + 1.0 / (1 + age)
    return sorted(score, key=lambda n: -score[n])


def rewrite(question: str, history: list[dict]) -> str | None:
    """A standalone version of a follow-up question, or None when it stands alone.

    Pronouns are replaced by their antecedent ("When did it join?" → "When did the
    ministry join?"), unless the question names what they mean itself (``refers_inside``);
    a question that leans on the conversation and still names nothing, or is too short to
    stand alone (``elliptic``), gets the conversation's topic in brackets. At most twice the
    question's words plus ``MAX_EXTRA_WORDS``.
    """
    if not history or not needs_rewrite(question):
        return None
    limit = 2 * len(question.split()) + MAX_EXTRA_WORDS
    text = question.strip()

    unresolved = []

    def replace(match: re.Match) -> str:
        word = match.group(1)
        if refers_inside(text, match.start(), word):
            return word
        found = antecedent(word, history)
        if not found:
            unresolved.append(word)
            return word
        suffix = {**_PERSONAL, **_THING, **_PLURAL}.get(word.lower(), "")
        return found + suffix

    resolved = _PRONOUN.sub(replace, text)
    if len(resolved.split()) > limit:
        resolved = text
    asked = set(terms(resolved))
    # the topic in brackets only where the question leans and names nothing, never on one that stands alone
    if not analyse(resolved).salient and (unresolved or _THERE_THEN.search(text) or _BARE_DEMONSTRATIVE.search(text)
                                        or elliptic(text)):
        extra = []
        for name in topic(history, asked):
            if len(" ".join(extra + [name]).split()) > MAX_EXTRA_WORDS:
                break
            if len((resolved + " " + " ".join(extra + [name])).split()) + 2 > limit:
                break
            extra.append(name)
            if len(extra) == 2:
                break
        if extra:
            stem = resolved.rstrip(" ?")
            resolved = f"{stem} ({', '.join(extra)})?" if resolved.endswith("?") else f"{stem} ({', '.join(extra)})"
    return resolved if resolved != text else None
