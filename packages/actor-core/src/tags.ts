import { MAX_TAG_BYTES, MAX_TAGS_PER_EVENT } from './spi';
import { describe } from './validation';

/** The tags of an event stored without any: one shared frozen array, so untagged events allocate nothing. */
export const NO_TAGS: readonly string[] = Object.freeze([]);

/**
 * Checks one event's tags and returns them as stored: in the order given, duplicates removed (the
 * same array when it has none, which is the common case). Throws TypeError for a tag that is not a
 * non-empty, well-formed string and RangeError for a tag over 256 UTF-8 bytes or more than 64 tags.
 * `where` names the event in messages ("message 3 of the batch").
 */
export function checkTags(tags: unknown, where: string): readonly string[] {
  if (!Array.isArray(tags))
    throw new TypeError(`tags of ${where} must be an array of strings, got ${describe(tags)}`);
  if (tags.length === 0) return NO_TAGS;
  if (tags.length > MAX_TAGS_PER_EVENT) {
    throw new RangeError(`${where} has ${tags.length} tags; at most ${MAX_TAGS_PER_EVENT} are allowed`);
  }
  let duplicates = false;
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i];
    checkTag(tag, `tag ${i} of ${where}`);
    for (let j = 0; j < i; j++) if (tags[j] === tag) duplicates = true;
  }
  return duplicates ? [...new Set(tags as string[])] : (tags as readonly string[]);
}

/** One tag: a non-empty, well-formed string of at most 256 UTF-8 bytes (eventsByTag checks its argument so too). */
export function checkTag(tag: unknown, what = 'tag'): asserts tag is string {
  if (typeof tag !== 'string') throw new TypeError(`${what} must be a string, got ${describe(tag)}`);
  if (tag.length === 0) throw new TypeError(`${what} must not be empty`);
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: only long strings need counting.
  if (tag.length * 3 > MAX_TAG_BYTES && Buffer.byteLength(tag, 'utf8') > MAX_TAG_BYTES) {
    throw new RangeError(`${what} ${describe(tag)} is over ${MAX_TAG_BYTES} bytes of UTF-8`);
  }
  if (!tag.isWellFormed()) throw new TypeError(`${what} must be well-formed unicode (no lone surrogates)`);
}

/**
 * The tags for each message of an append, from `AppendOptions.tags` (a list for all, or a function per
 * message). Undefined when no message has any, so an untagged append carries nothing.
 */
export function tagsForMessages<M>(
  option: unknown,
  messages: readonly M[],
): (readonly string[])[] | undefined {
  if (option === undefined) return undefined;
  const single = messages.length === 1;
  const where = (i: number) => (single ? 'the message' : `message ${i} of the batch`);
  if (typeof option === 'function') {
    const tagger = option as (message: M, index: number) => unknown;
    let any = false;
    const all = messages.map((m, i) => {
      const tags = checkTags(tagger(m, i), where(i));
      if (tags.length > 0) any = true;
      return tags;
    });
    return any ? all : undefined;
  }
  if (!Array.isArray(option)) {
    throw new TypeError(`options.tags must be an array of strings or a function, got ${describe(option)}`);
  }
  const tags = checkTags(option, single ? 'the message' : 'the batch');
  if (tags.length === 0) return undefined;
  return messages.map(() => tags);
}
