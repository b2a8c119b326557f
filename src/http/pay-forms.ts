/**
 * The methods' pay-page forms as the endpoint reads them (PluginRegistrars.payForm, offered or not in
 * HttpEndpointOptions.forms), so http/ names none: each form's flag is its plugin's.
 */
import { PAY_FORM_KEYS } from '../payments/index.ts';

type Forms = Readonly<Record<string, boolean>> | undefined;

/** The form under `key` is offered now (no key: the method brings no form). */
export function formOffered(forms: Forms, key: string | undefined): boolean {
  return key !== undefined && forms?.[key] === true;
}

/** GET /'s flag of every form of the list, offered or not, in the list's order. */
export function formFlags(forms: Forms): Record<string, boolean> {
  return Object.fromEntries(PAY_FORM_KEYS.map((key) => [key, formOffered(forms, key)]));
}

/** Some method sells through its form now (/captive: the page can extend a session). */
export function someFormOffered(forms: Forms): boolean {
  return PAY_FORM_KEYS.some((key) => formOffered(forms, key));
}
