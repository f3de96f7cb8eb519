"""Each answer rule alone, without models: where it fires, and where it must not."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.pipeline import documents, followup
from assistant.pipeline.compose import check_claims, clean_markers, finalize, lead_span, quote, QUOTE_WORDS, supporting_sentence, trim_to_question, WEAK_TEXT
from assistant.pipeline.evidence import ANSWER_THRESHOLD, FOLLOWUP_ANSWER_THRESHOLD, Passage, bigram_share, coverage, evidence, is_heading, leans_on_previous, looks_like_code, missing_names, names_near, subject_of
from assistant.pipeline.question import DATE, NAME, NUMBER, PERSON, PLACE, REASON, acronyms_in, analyse, answer_kind
from assistant.pipeline.spans import best_span, candidates


def flat_idf(words):
    return {w: 1.0 for w in words}


# ----------------------------------------------------------------------------- question analysis
@pytest.mark.parametrize("question, kind", [
    ("When was the lighthouse first lit?", DATE),
    ("In what year was Nikola Tesla born?", DATE),
    ("On which day of the week did the ministry join WeChat?", DATE),
    ("How many fishermen were rescued?", NUMBER),
    ("What is the population of Spain?", NUMBER),
    ("How tall is the tower?", NUMBER),
    ("Who wrote Hamlet?", PERSON),
    ("Whose idea was it?", PERSON),
    ("Where is the Atomium?", PLACE),
    ("In which city is the stadium?", PLACE),
    ("Why did the ministry join WeChat?", REASON),
    ("Which platform did the ministry join?", NAME),
    ("What is it called?", NAME),
    ("What is the capital of Belgium?", None),
    ("Describe the festival.", None),
])
def test_the_kind_of_answer_a_question_asks_for(question, kind):
    assert answer_kind(question) == kind


def test_names_of_a_question_skip_its_first_word():
    q = analyse("Which platform did the Ministry of State Security join in 2023?")
    assert q.salient == ("Ministry", "State", "Security", "2023")
    assert analyse("Name the capital.").salient == ()
    assert "mention" not in " ".join(analyse("Does the article mention WeChat?").terms)


def test_acronyms_match_their_expansion():
    assert "MSS" in acronyms_in("the Ministry of State Security said")
    assert acronyms_in("Monday was quiet.") == set()


# ----------------------------------------------------------------------------- spans
@pytest.mark.parametrize("sentence, kind, found", [
    ("The lighthouse was first lit on 3 March 1871.", DATE, ["3 March 1871"]),
    ("The reforms take effect in July.", DATE, ["July"]),
    ("It joined WeChat on Monday.", DATE, ["Monday"]),
    ("The ferry leaves at 7:15 every morning and returns at 6 pm.", DATE, ["7:15", "6 pm"]),
    ("Pi is about 3.14 and the gate shuts at noon.", DATE, ["noon"]),  # a decimal is not a time
    ("The tower is 41 metres tall.", NUMBER, ["41 metres"]),
    ("It was first lit on 3 March 1871.", NUMBER, ["1871"]),  # a day of a month is a date, not a count
    ("Prices rose by 1,200,000 dollars.", NUMBER, ["1,200,000 dollars"]),
    ("It was first lit on 3 March 1871 by Agnes Thorsby.", PERSON, ["Agnes Thorsby"]),  # a date is not a name
    ("Theresa May met the 1st Battalion in May.", NAME, ["Theresa May", "1st Battalion"]),
    ("The lighthouse was automated in 1987 and runs on solar power.", NUMBER, []),  # when, not how many
    ("It sold 1987 copies in 2001.", NUMBER, ["1987 copies"]),
    ("They won by 2000 and rose from 1500 to 1800.", NUMBER, ["2000", "1500", "1800"]),
    ("In 2008/09, 22 per cent of classes used it, 7/10 of them.", NUMBER, ["22 per cent", "7", "10"]),
])
def test_span_candidates(sentence, kind, found):
    assert [sentence[s:e] for s, e in candidates(sentence, kind)] == found


def test_a_name_does_not_run_into_a_date():
    sentence = "The ministry joined WeChat on Monday, as Frankfurt on Main did in May."
    assert [sentence[s:e] for s, e in candidates(sentence, NAME)] == ["WeChat", "Frankfurt on Main"]


def test_the_best_span_is_not_the_question_and_sits_near_its_words():
    q = analyse("Which NFL team represented the AFC at Super Bowl 50?")
    s = ("The American Football Conference (AFC) champion Denver Broncos defeated the National "
         "Football Conference (NFC) champion Carolina Panthers 24–10.")
    a, b = best_span(q, s)
    assert s[a:b] == "Denver Broncos"
    assert best_span(analyse("What is the capital of Belgium?"), s) is None  # no kind: no span


@pytest.mark.parametrize("question, sentence, span", [
    ("Which platform did the ministry join?",
     "By joining WeChat, the Ministry of State Security aims to tap into a vast network of users.", "WeChat"),
    ("Which university did Tesla attend?",  # the noun asked for may be part of the answer
     "Tesla attended the Graz University of Technology in Austria.", "Graz University of Technology"),
])
def test_a_span_repeating_the_question_is_not_the_answer_when_another_is_there(question, sentence, span):
    a, b = best_span(analyse(question), sentence)
    assert sentence[a:b].startswith(span)


# ----------------------------------------------------------------------------- features
def test_rare_words_weigh_more():
    idf = {"team": 0.5, "bronco": 4.0}
    assert coverage(["team", "bronco"], {"bronco"}, idf) > 0.8
    assert coverage(["team", "bronco"], {"team"}, idf) < 0.2
    assert coverage([], {"x"}, idf) == 0.0


def test_bigrams_and_headings_and_code():
    assert bigram_share(["secur", "law"], ["new", "secur", "law"]) == 1.0
    assert bigram_share(["secur", "law"], ["law", "secur"]) == 0.0
    assert is_heading("Installing the system") and not is_heading("The system is installed.")
    assert looks_like_code("$ sudo apt-get install foo") and looks_like_code("x = f(a[0]); y = {b: c};")
    assert not looks_like_code("Return the number of CPUs in the system (or None).")


def test_leaning_sentences_and_their_subject():
    assert leans_on_previous("It disappeared during the war.") and leans_on_previous("This development comes")
    assert not leans_on_previous("Italy disappeared from the map.")
    assert subject_of("Belgium lies to the north of France.") == "Belgium"


def test_names_near_and_missing_names():
    q = analyse("What is the capital of France?")
    assert names_near(q, {"capit", "spanish"}) == 0.0 and names_near(q, {"franc"}) == 1.0
    assert names_near(analyse("what is the capital?"), set()) == 1.0
    q = analyse("When did the MSS join Twitter?")
    assert missing_names(q, ["The Ministry of State Security joined WeChat."], [""]) == ["Twitter"]
    assert missing_names(analyse("When did the MSS join WeChat?"),
                         ["The Ministry of State Security joined WeChat."], [""]) == []


@pytest.mark.parametrize("question, passage, missing", [
    ("What binds the MHC Class 1 receptor?", "The TCR binds the MHC Class I receptor of another cell.", []),
    ("Who played in Super Bowl XLVII?", "Super Bowl 47 was played in New Orleans.", []),
    ("When did World War 3 end?", "World War II ended in 1945.", ["3"]),
    ("What happened in 1 week?", "Then I went home.", ["1"]),  # the pronoun is not a numeral
])
def test_a_roman_numeral_is_its_number(question, passage, missing):
    assert missing_names(analyse(question), [passage], [""]) == missing


def test_evidence_prefers_the_sentence_that_answers():
    passages = [
        Passage("Belgium lies to the north of France. Its capital is Brussels, home to the Commission. "
                "Belgian waffles are famous.", "Belgium"),
        Passage("The lighthouse at Hollowmere was first lit on 3 March 1871. The tower is 41 metres tall.",
                "Hollowmere"),
    ]
    ev = evidence("When was the lighthouse at Hollowmere first lit?", passages, flat_idf)
    best = ev.sentences[0]
    assert best.hit == 1 and "1871" in best.text and best.text[best.span[0]:best.span[1]] == "3 March 1871"
    ev = evidence("What is the capital of Belgium?", passages, flat_idf)
    assert "Brussels" in ev.sentences[0].text and ev.sentences[0].before is not None
    # a "how many" question is answered only by a sentence holding a number
    ev = evidence("How many languages does Belgium have?", passages[:1], flat_idf)
    assert ev.sentences == [] and not ev.answerable


def test_a_follow_up_needs_less_confidence_than_a_question_on_its_own():
    passages = [Passage("The car was parked by the river. It was painted a deep red.", "Cars")]
    similar = lambda texts: [0.3] * len(texts)  # noqa: E731 (as the embedder might find them)
    alone = evidence("What color was it painted?", passages, flat_idf, similar)
    follow_up = evidence("What color was it painted?", passages, flat_idf, similar, FOLLOWUP_ANSWER_THRESHOLD)
    assert alone.confidence == follow_up.confidence
    assert FOLLOWUP_ANSWER_THRESHOLD <= alone.confidence < ANSWER_THRESHOLD  # too little said to answer alone
    assert follow_up.answerable and not alone.answerable
    assert follow_up.strong  # quoted in auto mode, as any answerable question is, without asking the LLM
    assert follow_up.only([0]).answerable


def test_code_and_terms_are_cited_not_quoted():
    text = "os.cpu_count()\nReturn the number of CPUs in the system.\n\n$ nproc --all\n"
    passage = Passage(text, "os", ((0, 14, "term", "os.cpu_count()"), (57, 70, "code", "$ nproc --all")))
    ev = evidence("How do I get the number of CPUs in the system?", [passage], flat_idf)
    assert [s.text for s in ev.sentences] == ["Return the number of CPUs in the system."]
    assert ev.sentences[0].label == "os.cpu_count()"
    answer, _ = quote(ev, [text])
    assert answer == "os.cpu_count(): Return the number of CPUs in the system. [1]"


# ----------------------------------------------------------------------------- quotes
def test_a_quote_leads_with_the_span_and_marks_it():
    text = "The lighthouse at Hollowmere was first lit on 3 March 1871."
    ev = evidence("When was the Hollowmere lighthouse first lit?", [Passage(text)], flat_idf)
    answer, marks = quote(ev, [text])
    assert answer == "3 March 1871 — The lighthouse at Hollowmere was first lit on 3 March 1871. [1]"
    assert [text[s:e] for s, e in marks.answers[1]] == ["3 March 1871"]
    weak = dataclasses.replace(ev, confidence=FOLLOWUP_ANSWER_THRESHOLD / 2,
                               threshold=FOLLOWUP_ANSWER_THRESHOLD / 4)
    answer, marks = quote(weak, [text])  # a weak match names no answer, it only quotes, and says so
    assert answer == f"{WEAK_TEXT} {text} [1]" and not marks.answers


def test_a_long_sentence_is_cut_around_the_question_words():
    words = [f"w{i}" for i in range(60)]
    words[45:47] = ["ministry", "joined"]
    sentence = " ".join(words) + "."
    a, b = trim_to_question(sentence, {"ministri", "join"}, words=10)
    assert "ministry joined" in sentence[a:b] and len(sentence[a:b].split()) == 10
    assert trim_to_question("Short one.", {"x"}) == (0, 10)


def test_a_cut_quote_fits_the_first_words_with_what_leads_it():
    filler = " ".join(f"w{i}" for i in range(40))
    text = f"{filler} and the lighthouse at Hollowmere was first lit on 3 March 1871 after {filler}."
    ev = evidence("When was the Hollowmere lighthouse first lit?", [Passage(text)], flat_idf)
    answer, _ = quote(ev, [text])
    assert answer.startswith("3 March 1871 — … ") and answer.endswith(" … [1]")
    assert len(answer.split()) - 1 <= QUOTE_WORDS  # a reader's first QUOTE_WORDS words hold it all
    assert "lighthouse at Hollowmere was first lit on 3 March 1871" in answer


def test_a_leaning_sentence_brings_the_one_before():
    text = "The Marigold sank in 1923. It disappeared during the great storm."
    ev = evidence("What disappeared during the great storm?", [Passage(text)], flat_idf)
    answer, _ = quote(ev, [text])
    assert answer.startswith("The Marigold sank in 1923. It disappeared")
    text = "One day, his old grandpa was watching the boy. His old grandpa coughed and smiled."
    similar = lambda texts: [0.7 if t.startswith("His") else 0.6 for t in texts]  # noqa: E731
    ev = evidence("What did the old grandpa do?", [Passage(text)], flat_idf, similar)
    assert ev.sentences[0].text.startswith("His") and ev.sentences[1].score >= 0.8 * ev.sentences[0].score
    answer, _ = quote(ev, [text])
    assert answer == f"{text} [1]"  # the sentence it leans on is not quoted again as the second one


# ----------------------------------------------------------------------------- claims
PASSAGE = ("China's Ministry of State Security joined WeChat on Monday. The overhaul of security laws "
           "is scheduled to come into effect in July.")


def test_a_claim_is_supported_by_one_sentence():
    assert supporting_sentence("The ministry joined WeChat on Monday [1].", PASSAGE) is not None
    assert supporting_sentence("The laws come into effect in July [1].", PASSAGE) is not None
    # a fact stated nowhere, on the same subject, passed the old checks
    invented = "In July WeChat will become a cornerstone of China's digital economy for years [1]."
    assert supporting_sentence(invented, PASSAGE) is None
    # names must be in the same sentence: Monday is not when the laws take effect
    assert supporting_sentence("The laws take effect on Monday [1].", PASSAGE) is None


def test_unsupported_sentences_are_removed():
    text = "The ministry joined WeChat on Monday [1]. It is a cornerstone of the digital economy [1]."
    kept, marks, removed = check_claims(text, [PASSAGE], [""])
    assert kept == "The ministry joined WeChat on Monday [1]."
    assert removed == ["It is a cornerstone of the digital economy [1]."]
    assert marks.highlights[1] == [[0, len("China's Ministry of State Security joined WeChat on Monday.")]]
    assert check_claims("It joined WeChat.", [PASSAGE], [""])[0] == ""  # uncited: removed


def test_a_written_answer_must_hold_the_answer_the_evidence_names():
    text = ("The tower is 41 metres tall and painted in red and white bands. "
            "The lighthouse has 3 lamps and now runs on solar power.")
    ev = evidence("How tall is the lighthouse tower?", [Passage(text, "Hollowmere Lighthouse")], flat_idf)
    assert lead_span(ev) == "41 metres"
    # true, cited and holding a number, but not the one asked for: the quote replaces it
    off = "The lighthouse has 3 lamps and now runs on solar power [1]."
    answer, abstained, quoted, marks = finalize("How tall is the lighthouse tower?", off, ev, [text], [""])
    assert quoted and not abstained and answer.startswith("41 metres — ") and marks.answers[1]
    for kept in ("The tower is 41 metres tall [1].", "The tower is 41 m tall [1]."):  # the number is what counts
        assert finalize("How tall is the lighthouse tower?", kept, ev, [text], [""])[:3] == (kept, False, False)
    # a weak match names no answer span, so it asks nothing of the written answer
    weak = dataclasses.replace(ev, confidence=FOLLOWUP_ANSWER_THRESHOLD / 2,
                               threshold=FOLLOWUP_ANSWER_THRESHOLD / 4)
    assert lead_span(weak) is None


def test_invalid_markers_are_removed():
    assert clean_markers("Brussels [1][7] is the capital [2, 9].", 2) == "Brussels [1] is the capital [2]."


# ----------------------------------------------------------------------------- follow-ups
HISTORY = [{"role": "user", "content": "Which platform did the Ministry of State Security join?"},
           {"role": "assistant", "content": "The Ministry of State Security joined WeChat on Monday [1]."}]


def test_a_pronoun_is_replaced_by_its_antecedent():
    assert followup.rewrite("When did it join?", HISTORY) == "When did Ministry of State Security join?"
    mouse = [{"role": "user", "content": "who is the most famous mouse?"},
             {"role": "assistant", "content": "Mickey Mouse"}]
    assert followup.rewrite("about when was he created?", mouse) == "about when was Mickey Mouse created?"


@pytest.mark.parametrize("previous, answer", [
    ("Did he find the perfect costume?", "yes"),  # a yes is not a thing
    ("How long did the girl have to write her letter?", "a week"),  # a time
    ("Where did he put the bundle?", "on his shoulder"),  # a place said as a clause
    ("What did they think Mrs. Stanhope would do?", "keep them all night"),  # an action
    ("Who wrote the letter?", "Joe Carter"),  # a person is not "it"
])
def test_an_answer_that_is_not_a_thing_is_not_what_it_means(previous, answer):
    history = [{"role": "user", "content": previous}, {"role": "assistant", "content": answer}]
    assert f"did {answer} happen" not in (followup.rewrite("Why did it happen?", history) or "")


def test_a_short_answer_naming_a_thing_is_what_it_or_they_mean():
    fish = [{"role": "user", "content": "What did she finally decide to get?"},
            {"role": "assistant", "content": "a fish"}]
    assert followup.rewrite("What color was it?", fish) == "What color was a fish?"
    friends = [{"role": "user", "content": "Who were his friends?"},
               {"role": "assistant", "content": "Sam, Mark and David."}]
    assert followup.rewrite("What did they prefer to do?", friends) == "What did Sam, Mark and David prefer to do?"


@pytest.mark.parametrize("previous, question, rewritten", [
    ("Which platform did the ministry join?", "When did it join?", "When did the ministry join"),
    ("Where did the lion live?", "Was it happy?", "Was the lion happy?"),
    ("What did the old man ask for?", "Did it work?", "Did the old man work?"),
])
def test_the_subject_of_a_did_question_is_the_noun_not_the_verb_after_it(previous, question, rewritten):
    history = [{"role": "user", "content": previous},
               {"role": "assistant", "content": "An answer that names nothing in particular, said at length [1]."}]
    assert followup.rewrite(question, history).startswith(rewritten)


def test_a_question_naming_nothing_gets_the_topic_and_stays_short():
    history = HISTORY + [{"role": "user", "content": "When?"}, {"role": "assistant", "content": "Fifty years ago"}]
    out = followup.rewrite("Why?", history)
    assert out.startswith("Why (") and "Ministry of State Security" in out and "Fifty" not in out
    assert len(out.split()) <= 2 * 1 + followup.MAX_EXTRA_WORDS


def test_a_history_is_checked_and_its_roles_read_in_any_case():
    history = [{"role": "User", "content": "Which platform did the ministry join?"},
               {"role": "ASSISTANT", "content": "An answer that names nothing in particular, said at length."}]
    assert followup.rewrite("When did it join?", followup.check_history(history)).startswith("When did the ministry")
    assert followup.check_history(None) == []
    with pytest.raises(ValueError, match=r"history\[0\]"):
        followup.check_history([("user", "hi")])


def test_the_topic_is_not_a_date_already_answered():
    history = [{"role": "user", "content": "Which platform did the ministry join?"},
               {"role": "assistant", "content": "WeChat on Monday — The Ministry of State Security joined "
                                                "WeChat on Monday, 3 March 2024. [1]"}]
    out = followup.rewrite("Why?", history)  # too short to stand alone: the topic in brackets
    assert "WeChat" in out and "Monday" not in out and "March" not in out and "2024" not in out


def test_a_resolved_follow_up_gets_no_topic_in_brackets():
    history = [{"role": "user", "content": "Which platform did the ministry join?"},
               {"role": "assistant", "content": "WeChat [1]"}]
    assert followup.rewrite("When did it join?", history) in ("When did the ministry join?", "When did WeChat join?")


@pytest.mark.parametrize("question", [
    "Where should applications install their MIME type definitions?",  # "their" means the applications
    "How tall is the tower and when was it built?",  # "it" is the tower
    "Who wrote the article?",  # a document question that stands alone
    "Summarize the article.",
    "What is decentralization?",  # short, but names what it asks about
    "Is there a standard template countries can apply for decentralization?",  # "there" points nowhere
])
def test_a_question_that_stands_alone_is_not_rewritten(question):
    history = [{"role": "user", "content": "Which platform did China's Ministry of State Security join?"},
               {"role": "assistant", "content": "WeChat — The ministry joined WeChat. [1]"},
               {"role": "user", "content": "Who is David Baker?"}]
    assert followup.rewrite(question, history) is None


def test_an_antecedent_agrees_with_its_pronoun():
    history = [{"role": "user", "content": "What did the ministry say about the new rules?"}]
    out = followup.rewrite("When do they apply?", history)
    assert out == "When do the new rules apply?"


def test_a_standalone_question_is_left_alone():
    assert followup.rewrite("What is the capital of Belgium?", HISTORY) is None
    assert followup.rewrite("When did it join?", []) is None


# ----------------------------------------------------------------------------- whole documents
@pytest.mark.parametrize("question, kind", [
    ("Summarize the article.", documents.SUMMARY),
    ("What is this document about?", documents.SUMMARY),
    ("What are the main points?", documents.SUMMARY),
    ("Who wrote this?", documents.AUTHOR),
    ("Who is the author of the article?", documents.AUTHOR),
    ("When was the article published?", documents.DATE),
    ("What is the title of the document?", documents.TITLE),
    ("Who wrote Hamlet?", None),  # about the content
    ("Who is the author of Hamlet?", None),
    ("What is the title of the king?", None),
    ("When was the tower built?", None),
])
def test_document_level_questions(question, kind):
    assert documents.intent(question) == kind


def test_a_summary_is_central_non_redundant_and_in_order():
    sentences = [documents.Picked(i * 100, i * 100 + 50, t) for i, t in enumerate([
        "The ministry joined WeChat to reach the public.",
        "The ministry joined WeChat to reach the public quickly.",
        "Critics fear the ministry will monitor WeChat users.",
        "The weather was pleasant that week in the capital.",
        "WeChat has millions of users across China.",
        "The ministry publishes statements on WeChat.",
        "Lunch was served at noon.",
        "Users of WeChat may face more scrutiny from the ministry.",
    ])]
    picked = documents.summary_sentences(sentences, limit=2)
    assert len(picked) == 2 and picked == sorted(picked, key=lambda p: p.start)
    texts = [p.text for p in picked]
    assert not ("quickly" in " ".join(texts) and texts[0].endswith("public."))  # not both near-duplicates
    assert all("weather" not in t and "Lunch" not in t for t in texts)


def test_a_true_sentence_about_something_else_is_not_an_answer():
    passage = ("Rottnest Island is home to the quokka, a small marsupial. Sea urchins eat kelp when "
               "otters are absent.")
    quokka = (0, passage.index(".") + 1)
    kept, _, removed = check_claims("The answer is: sea urchins [1].", [passage], [""], {1: {quokka}})
    assert kept == "" and removed
    kept, _, _ = check_claims("The quokka lives on Rottnest Island [1].", [passage], [""], {1: {quokka}})
    assert kept == "The quokka lives on Rottnest Island [1]."
