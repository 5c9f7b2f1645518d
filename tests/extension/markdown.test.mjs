import { test } from 'node:test';
import assert from 'node:assert/strict';

import { escapeHtml, renderMarkdown, renderPlainText, safeUrl } from '../../extension/lib/markdown.js';

const ALLOWED = new Set(['p', 'br', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'pre', 'code', 'blockquote', 'hr', 'strong', 'em', 'del', 'a']);

// Every tag in the output, with its attributes, read by a strict scanner: any '<' that does not
// start one of our well-formed tags would be a leak of raw input.
function tags(html) {
  const found = [];
  const re = /<(\/?)([a-z0-9]+)((?:\s+[a-z-]+="[^"<>]*")*)\s*>/g;
  let last = 0;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    assert.ok(!html.slice(last, m.index).includes('<'), `raw '<' in output: ${html}`);
    const attrs = [...m[3].matchAll(/([a-z-]+)="([^"]*)"/g)].map(([, name, value]) => ({ name, value }));
    found.push({ name: m[2], closing: m[1] === '/', attrs });
    last = re.lastIndex;
  }
  assert.ok(!html.slice(last).includes('<'), `raw '<' in output: ${html}`);
  return found;
}

function assertHarmless(html) {
  for (const tag of tags(html)) {
    assert.ok(ALLOWED.has(tag.name), `tag <${tag.name}> in ${html}`);
    for (const { name, value } of tag.attrs) {
      assert.ok(['href', 'class', 'start'].includes(name), `attribute ${name} in ${html}`);
      if (name === 'href') assert.match(value, /^(https?:|mailto:)/, html);
    }
  }
}

const HOSTILE = [
  '<script>document.body.dataset.pwned = 1</script>',
  '<img src=x onerror="document.body.dataset.pwned=1">',
  '<svg><script>alert(1)</script></svg>',
  '<a href="javascript:alert(1)">click</a>',
  '[click](javascript:alert(1))',
  '[click](JaVaScRiPt:alert(1))',
  '[click](java\tscript:alert(1))',
  '[click]( javascript:alert(1))',
  '[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
  '[click](vbscript:msgbox(1))',
  '[x](https://ok.test/" onmouseover="alert(1))',
  '[x](https://ok.test/\'onmouseover=alert(1)//)',
  '**<b onclick=alert(1)>bold</b>**',
  '`<script>alert(1)</script>`',
  '```html\n<script>alert(1)</script>\n```',
  '# <iframe src="https://evil.test"></iframe>',
  '- <style>body{display:none}</style>\n- <form action=x><input></form>',
  '> <math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
  '<<script>script>alert(1)<</script>/script>',
  '&lt;script&gt;alert(1)&lt;/script&gt;',
  '[a](https://x.test/**b**) **[b](https://y.test/_c_)**',
  '<!-- comment --><![CDATA[x]]>',
  'https://ok.test/"><script>alert(1)</script>',
];

for (const input of HOSTILE) {
  test(`hostile answer text stays text: ${JSON.stringify(input).slice(0, 60)}`, () => {
    assertHarmless(renderMarkdown(input));
    assertHarmless(renderPlainText(input));
  });
}

test('raw HTML in an answer shows as the characters the model wrote', () => {
  assert.equal(renderMarkdown('<b>x</b> & y'), '<p>&lt;b&gt;x&lt;/b&gt; &amp; y</p>');
});

test('links keep only http, https and mailto targets', () => {
  assert.equal(safeUrl('https://example.com/a?b=1&c=2'), 'https://example.com/a?b=1&c=2');
  assert.equal(safeUrl('mailto:a@example.com'), 'mailto:a@example.com');
  for (const bad of ['javascript:alert(1)', ' javascript:alert(1)', 'java\nscript:alert(1)', 'data:text/html,x', '/relative', 'file:///etc/passwd', 'chrome://settings']) {
    assert.equal(safeUrl(bad), null, bad);
  }
  assert.equal(renderMarkdown('[docs](https://example.com/a?b=1&c=2)'), '<p><a href="https://example.com/a?b=1&amp;c=2">docs</a></p>');
});

test('key points render as a list with emphasis and code', () => {
  const html = renderMarkdown('## Key points\n\n- Solar **doubled**\n- Costs fell by *half*\n- Use `npm pack`');
  assert.equal(
    html,
    '<h2>Key points</h2>\n<ul><li>Solar <strong>doubled</strong></li><li>Costs fell by <em>half</em></li><li>Use <code>npm pack</code></li></ul>',
  );
});

test('nested and numbered lists keep their structure', () => {
  assert.equal(renderMarkdown('3. c\n4. d\n   - e'), '<ol start="3"><li>c</li><li>d<ul><li>e</li></ul></li></ol>');
});

test('a code fence still streaming runs to the end of the answer', () => {
  assert.equal(renderMarkdown('Run:\n```sh\nmake run'), '<p>Run:</p>\n<pre><code class="language-sh">make run</code></pre>');
});

test('a fence language cannot smuggle an attribute', () => {
  assertHarmless(renderMarkdown('```x"onload="alert(1)\ncode\n```'));
});

test('emphasis markers inside a link target do not reach into the attribute', () => {
  const html = renderMarkdown('[a](https://x.test/**b**)');
  assert.equal(html, '<p><a href="https://x.test/**b**">a</a></p>');
});

test('plain text keeps paragraphs and line breaks', () => {
  assert.equal(renderPlainText('a\nb\n\n<c>'), '<p>a<br>b</p>\n<p>&lt;c&gt;</p>');
  assert.equal(escapeHtml(`"'&<>`), '&quot;&#39;&amp;&lt;&gt;');
});
