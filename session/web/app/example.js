// An example FHIR R4 MedicationRequest to start the prescription form with.
// The subject and requester are pseudonymous references, as an app that
// keeps identities in its own records would send them.

export function examplePrescription(now = new Date()) {
  return {
    resourceType: 'MedicationRequest',
    status: 'active',
    intent: 'order',
    medicationCodeableConcept: {
      coding: [{
        system: 'http://www.nlm.nih.gov/research/umls/rxnorm',
        code: '308182',
        display: 'Amoxicillin 250 MG Oral Capsule',
      }],
      text: 'Amoxicillin 250 mg capsule',
    },
    subject: { reference: 'Patient/example', display: 'the patient of this consultation' },
    authoredOn: now.toISOString().replace(/\.\d+Z$/, 'Z'),
    requester: { reference: 'Practitioner/example', display: 'the physician of this consultation' },
    reasonCode: [{ text: 'Acute otitis media' }],
    dosageInstruction: [{
      sequence: 1,
      text: 'One capsule three times a day for 7 days',
      timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd', boundsDuration: { value: 7, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' } } },
      route: { text: 'oral' },
      doseAndRate: [{ doseQuantity: { value: 250, unit: 'mg', system: 'http://unitsofmeasure.org', code: 'mg' } }],
    }],
    dispenseRequest: {
      numberOfRepeatsAllowed: 0,
      quantity: { value: 21, unit: 'capsule' },
      expectedSupplyDuration: { value: 7, unit: 'days', system: 'http://unitsofmeasure.org', code: 'd' },
    },
    substitution: { allowedBoolean: true },
  };
}
