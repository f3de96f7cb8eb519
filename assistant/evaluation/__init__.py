"""Answer quality as numbers: the evaluation sets (``data``, ``datasets``), how an answer is
scored (``metrics``), asking a set (``runner``), the summaries (``report``) and the plain
llama-index pipeline compared against (``baseline``). The library never imports this
package; only the CLI's ``eval`` command does."""

from assistant.evaluation.data import QA, AnswerSpan, Conversation, Turn, is_conversation_file, load_conversations, load_qa
from assistant.evaluation.metrics import (answer_right, exact_match, f1, holds, leading_span, normalize_answer,
                                          question_type)
from assistant.evaluation.report import Report, summarize_records
from assistant.evaluation.runner import Record, evaluate, evaluate_conversations, evaluate_subject_changes, score

__all__ = ["QA", "AnswerSpan", "Conversation", "Record", "Report", "Turn", "answer_right", "evaluate",
           "evaluate_conversations", "evaluate_subject_changes", "exact_match", "f1", "holds", "is_conversation_file",
           "leading_span", "load_conversations", "load_qa", "normalize_answer", "question_type", "score",
           "summarize_records"]
