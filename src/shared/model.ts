/**
 * The model of an MDrivenServer-style cluster: classes become tables, attributes typed
 * columns, keys primary keys. Its checksum (sha256 of the canonical form) names it in
 * every commitblock, so a slave that meets an unknown checksum knows to fetch the model
 * and evolve its schema first.
 */
export const ATTRIBUTE_TYPES = ['boolean', 'integer', 'bigint', 'numeric', 'text', 'timestamptz', 'jsonb'] as const;
export type AttributeType = (typeof ATTRIBUTE_TYPES)[number];

export interface AttributeSpec {
  name: string;
  type: AttributeType;
  /** New attributes must be nullable: rows that exist have no value for them. */
  nullable: boolean;
}

export interface ClassSpec {
  name: string;
  /** Attribute names forming the primary key, in order. */
  key: string[];
  attributes: AttributeSpec[];
}

export interface Model {
  classes: ClassSpec[];
}

/** Type changes that keep every existing value: the automatic ("widening") ones. */
export const WIDENINGS: Record<AttributeType, AttributeType[]> = {
  boolean: [],
  integer: ['bigint', 'numeric'],
  bigint: ['numeric'],
  numeric: [],
  text: [],
  timestamptz: [],
  jsonb: [],
};
