/**
 * The URL elements of a Client Tracker registration (docs/client-tracker-protocol.md §1), with no
 * dependencies, so config validation can name them without loading the XML code.
 */

/** The URL elements of a registration, in document order. */
export const REGISTRATION_URL_ELEMENTS = [
  'launchURL',
  'resourceInfoURL',
  'resourceSummaryURL',
  'resourceEmailURL',
  'resourceTaxonomyInfoURL',
] as const;

export type RegistrationUrlElement = (typeof REGISTRATION_URL_ELEMENTS)[number];

/** The ones Client Tracker's servers call (the rest a user's browser opens): rewritten by default. */
export const SERVER_CALLED_URL_ELEMENTS: readonly RegistrationUrlElement[] = ['resourceInfoURL', 'resourceTaxonomyInfoURL'];
