// Yjs updates made by the real yjs, for the server's V1/V2 converter tests.
//
//   node yupdates.mjs generate SEED   -> JSON on stdout: {updates: [{v2, v1, v1v2}], state, content}
//       several docs make seeded random edits (text with formats and embeds, map values of
//       every kind, arrays, XML, deletions) and exchange updates; every update each doc
//       emits is printed in both formats (base64), with the final merged state and content.
//   node yupdates.mjs apply < JSON    -> the content of a new doc after Y.applyUpdateV2 of
//       each base64 V2 update of the JSON list on stdin.
import * as Y from 'yjs'

const b64 = (bytes) => Buffer.from(bytes).toString('base64')

function contentOf(doc) {
  return {
    text: doc.getText('text').toDelta(),
    map: doc.getMap('map').toJSON(),
    array: doc.getArray('array').toJSON(),
    xml: doc.getXmlFragment('xml').toString(),
  }
}

// An update as the client wrote it (v2), in V1 (v1), and that V1 back in V2 (v1v2: what
// Yjs writes from V1, with the struct flags Yjs normalises on reading).
function formats(update) {
  const v1 = Y.convertUpdateFormatV2ToV1(update)
  return { v2: b64(update), v1: b64(v1), v1v2: b64(Y.convertUpdateFormatV1ToV2(v1)) }
}

function random(seed) {
  let state = seed >>> 0 || 1
  return (n) => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state % n
  }
}

const WORDS = ['a', 'hello ', 'wörld', '😀 emoji', 'long string '.repeat(5), '\n', 'ü']

function edit(doc, pick, step) {
  const text = doc.getText('text')
  const map = doc.getMap('map')
  const array = doc.getArray('array')
  const xml = doc.getXmlFragment('xml')
  switch (pick(12)) {
    case 0: case 1: case 2:
      text.insert(pick(text.length + 1), WORDS[pick(WORDS.length)])
      break
    case 3:
      if (text.length > 0) {
        const at = pick(text.length)
        text.delete(at, Math.min(1 + pick(5), text.length - at))
      }
      break
    case 4:
      if (text.length > 0) text.format(pick(text.length), 1 + pick(3), pick(2) ? { bold: true } : { color: `#${step}`, size: step * 1.5 })
      break
    case 5:
      text.insertEmbed(pick(text.length + 1), { image: `i${step}.png`, n: step })
      break
    case 6: {
      const values = [step, -step, step * 0.25, 2 ** 40, 'str' + step, true, null, { nested: [1, 'two'] }, [step], new Uint8Array([1, 2, step % 256])]
      map.set('k' + pick(6), values[pick(values.length)])
      break
    }
    case 7:
      if (pick(2)) map.delete('k' + pick(6))
      else map.set('sub' + pick(2), new Y.Map([['x', step]]))
      break
    case 8:
      array.insert(pick(array.length + 1), [step, 'v' + step])
      break
    case 9:
      if (array.length > 0) array.delete(pick(array.length), 1)
      else array.push([new Y.Text('inner ' + step)])
      break
    case 10: {
      const element = new Y.XmlElement(pick(2) ? 'p' : 'h1')
      element.setAttribute('class', 'c' + step)
      element.insert(0, [new Y.XmlText('x' + step)])
      xml.insert(pick(xml.length + 1), [element])
      break
    }
    default:
      if (xml.length > 0) xml.delete(pick(xml.length), 1)
  }
}

function generate(seed) {
  const pick = random(seed)
  const docs = [0, 1, 2].map((n) => new Y.Doc({ gc: n !== 2 }))
  const updates = []
  docs.forEach((doc, n) => {
    doc.on('updateV2', (update, origin) => {
      if (origin === 'remote') return
      updates.push(formats(update))
      // delivered later, out of order at times, as a server would
      for (const other of docs) if (other !== doc) other._inbox = (other._inbox || []).concat([update])
    })
  })
  for (let step = 1; step <= 120; step++) {
    const doc = docs[pick(docs.length)]
    doc.transact(() => {
      for (let n = 1 + pick(3); n > 0; n--) edit(doc, pick, step)
    })
    if (pick(4) === 0) {
      const other = docs[pick(docs.length)]
      const inbox = other._inbox || []
      other._inbox = []
      if (pick(2)) inbox.reverse()
      for (const update of inbox) Y.applyUpdateV2(other, update, 'remote')
    }
  }
  const merged = new Y.Doc()
  for (const { v2 } of updates) Y.applyUpdateV2(merged, Buffer.from(v2, 'base64'))
  const state = Y.encodeStateAsUpdateV2(merged)
  return {
    updates,
    state: formats(state),
    content: contentOf(merged),
  }
}

async function apply() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const doc = new Y.Doc()
  for (const update of JSON.parse(Buffer.concat(chunks).toString())) {
    Y.applyUpdateV2(doc, Buffer.from(update, 'base64'))
  }
  return contentOf(doc)
}

const [mode, seed] = process.argv.slice(2)
const result = mode === 'generate' ? generate(Number(seed)) : await apply()
process.stdout.write(JSON.stringify(result, (key, value) => (value instanceof Uint8Array ? { bytes: [...value] } : value)))
