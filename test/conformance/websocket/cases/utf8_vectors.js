// The UTF-8 test sequences of Autobahn's case6_x_x.py
// (createUtf8TestSequences, from Markus Kuhn's UTF-8-test.txt): one group
// per subcategory 6.5 to 6.23, each a list of [valid, bytes]. Byte for
// byte what Autobahn sends.
'use strict';
const { utf8Valid } = require('../frame');

const b = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));
const hex = (h) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i); // Python's xrange

function groups() {
  const G = [];
  const vss = hex('ce ba e1 bd b9 cf 83 ce bc ce b5');
  G.push(['Some valid UTF-8 sequences', [
    [true, b('hello\x24world')],
    [true, b('hello', hex('c2a2'), 'world')],
    [true, b('hello', hex('e282ac'), 'world')],
    [true, b('hello', hex('f0a4ada2'), 'world')],
    [true, vss],
  ]]);
  // valid when the prefix ends on a code point (Autobahn: valid and complete)
  G.push(['All prefixes of a valid UTF-8 string that contains multi-byte code points',
    range(1, vss.length + 1).map((i) => [utf8Valid(vss.subarray(0, i)), vss.subarray(0, i)])]);
  G.push(['First possible sequence of a certain length', [
    [true, hex('00')], [true, hex('c280')], [true, hex('e0a080')], [true, hex('f0908080')],
  ]]);
  G.push(['First possible sequence length 5/6 (invalid codepoints)', [
    [false, hex('f888808080')], [false, hex('fc8480808080')],
  ]]);
  G.push(['Last possible sequence of a certain length', [
    [true, hex('7f')], [true, hex('dfbf')], [true, hex('efbfbf')], [true, hex('f48fbfbf')],
  ]]);
  G.push(['Last possible sequence length 4/5/6 (invalid codepoints)', [
    [false, hex('f7bfbfbf')], [false, hex('fbbfbfbfbf')], [false, hex('fdbfbfbfbfbf')],
  ]]);
  G.push(['Other boundary conditions', [
    [true, hex('ed9fbf')], [true, hex('ee8080')], [true, hex('efbfbd')], [true, hex('f48fbfbf')],
    [false, hex('f4908080')],
  ]]);
  G.push(['Unexpected continuation bytes', [
    [false, hex('80')], [false, hex('bf')], [false, hex('80bf')], [false, hex('80bf80')],
    [false, hex('80bf80bf')], [false, hex('80bf80bf80')], [false, hex('80bf80bf80bf')],
    [false, Buffer.from(range(0x80, 0xbf))],
  ]]);
  G.push(['Lonely start characters',
    [[0xc0, 0xdf], [0xe0, 0xef], [0xf0, 0xf7], [0xf8, 0xfb], [0xfc, 0xfd]].map(([lo, hi]) =>
      [false, Buffer.from(range(lo, hi).flatMap((c) => [c, 0x20]))])]);
  const k = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf'].map(hex);
  G.push(['Sequences with last continuation byte missing', k.map((s) => [false, s])]);
  G.push(['Concatenation of incomplete sequences', [[false, Buffer.concat(k)]]]);
  G.push(['Impossible bytes', [[false, hex('fe')], [false, hex('ff')], [false, hex('fefeffff')]]]);
  G.push(['Examples of an overlong ASCII character', [
    [false, hex('c0af')], [false, hex('e080af')], [false, hex('f08080af')], [false, hex('f8808080af')],
    [false, hex('fc80808080af')],
  ]]);
  G.push(['Maximum overlong sequences', [
    [false, hex('c1bf')], [false, hex('e09fbf')], [false, hex('f08fbfbf')], [false, hex('f887bfbfbf')],
    [false, hex('fc83bfbfbfbf')],
  ]]);
  G.push(['Overlong representation of the NUL character', [
    [false, hex('c080')], [false, hex('e08080')], [false, hex('f0808080')], [false, hex('f880808080')],
    [false, hex('fc8080808080')],
  ]]);
  G.push(['Single UTF-16 surrogates',
    ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf'].map((h) => [false, hex(h)])]);
  G.push(['Paired UTF-16 surrogates',
    ['eda080edb080', 'eda080edbfbf', 'edadbfedb080', 'edadbfedbfbf', 'edae80edb080', 'edae80edbfbf',
      'edafbfedb080', 'edafbfedbfbf'].map((h) => [false, hex(h)])]);
  const nonchars = [[true, hex('efbfbe')], [true, hex('efbfbf')]];
  for (const z1 of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const z2 of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if (z1 === 0xf4 && z2 !== 0x8f) continue; // past U+10FFFF
      for (const z3 of [0xbe, 0xbf]) {
        if (z1 === 0xf0 && z2 === 0x8f) continue; // overlong
        nonchars.push([true, Buffer.from([z1, z2, 0xbf, z3])]);
      }
    }
  }
  G.push(['Non-character code points (valid UTF-8)', nonchars]);
  G.push(['Unicode specials (i.e. replacement char)',
    ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf'].map((h) => [true, hex(h)])]);
  return G;
}

module.exports = { groups };
