"""Step: what a chat message asks for. "What is this page about?", "Summarize this", "TL;DR"
ask for a summary, whatever words they use, and get one (pure functions).

Only a message that is nothing but such a request counts: "Summarize what Prasad said about
tariffs" is a question about one passage and is answered as one.
"""

from __future__ import annotations

import re

_SUMMARY_REQUESTS = [
    # English
    r"(?:so\s+)?what(?:'s|\s+is|\s+does)\s+(?:this|the|it)(?:\s+(?:page|article|post|story|"
    r"piece|text|document|doc|site|video|paper|pdf|thing|one))?\s+(?:about|say|cover|saying)",
    r"what\s+(?:is|are)\s+(?:the\s+)?(?:main|key)\s+(?:points?|ideas?|takeaways?|facts?)"
    r"(?:\s+(?:of|in)\s+(?:this|the)\s+\w+)?",
    r"(?:please\s+|can\s+you\s+|could\s+you\s+)?(?:summari[sz]e|sum\s+up|recap|outline)"
    r"(?:\s+(?:this|it|the|that))?(?:\s+(?:page|article|post|story|text|document|video|"
    r"for\s+me))?(?:\s+(?:for\s+me|please|briefly|in\s+short))?",
    r"(?:(?:can|could|would)\s+you\s+)?(?:please\s+)?"
    r"(?:give\s+me\s+|write\s+|make\s+|i\s+want\s+|can\s+i\s+get\s+)?(?:a\s+|the\s+)?(?:short\s+|quick\s+|brief\s+)?"
    r"(?:summary|overview|gist|rundown|recap|tl;?\s*dr)(?:\s+(?:of\s+)?(?:this|the|it)"
    r"(?:\s+\w+)?)?(?:\s+please)?",
    r"tl;?\s*dr",
    r"key\s+(?:points|takeaways|facts)",
    r"main\s+(?:points|ideas|takeaways)",
    # Chinese, Japanese
    r"(?:请)?(?:总结|概括|归纳|摘要)(?:一下)?(?:这篇|这个|本文|文章|页面|网页)?(?:的)?(?:内容|要点)?",
    r"(?:这篇|这个|本)(?:文章|页面|网页)?(?:讲|说)了?(?:什么|啥)",
    r"(?:この)?(?:ページ|記事)(?:は|の)?(?:何について|要約|まとめ)",
    r"要約(?:して)?(?:ください)?",
    # Russian
    r"(?:о\s+ч[её]м|про\s+что)\s+(?:эта\s+|этот\s+)?(?:статья|страница|текст|видео)?",
    r"(?:кратко|вкратце|резюмируй|подытожь|перескажи)(?:\s+(?:эту\s+)?(?:статью|страницу|текст))?",
    # Spanish, Portuguese, French, German, Indonesian
    r"(?:de\s+qu[eé]\s+trata|resume|resumen|resúmelo)(?:\s+(?:esta|este|la|el)\s+\w+)?",
    r"(?:sobre\s+o\s+que|resuma|resumo)(?:\s+(?:é|fala))?(?:\s+(?:esta|este|a|o)\s+\w+)?",
    r"(?:de\s+quoi\s+parle|résume|résumé)(?:\s+(?:cette|cet|ce|la|le)\s+\w+)?",
    r"(?:worum\s+geht\s+es|fasse\s+zusammen|zusammenfassung)(?:\s+\w+){0,3}",
    r"(?:ringkas(?:kan)?|rangkum(?:kan)?|ringkasan|tentang\s+apa)(?:\s+(?:ini|artikel\s+ini|"
    r"halaman\s+ini))?",
]
_WHOLE = re.compile(
    r"^\s*(?:" + "|".join(f"(?:{p})" for p in _SUMMARY_REQUESTS) + r")\s*[?？.!。！]*\s*$",
    re.IGNORECASE,
)


def asks_for_summary(question: str) -> bool:
    """Whether the whole message asks for a summary of the page."""
    return bool(_WHOLE.match(question.strip()))
