// Piscina worker for the usage engine (see src/meter). Placeholder until the meter lands.
export default function usage(): null {
  return null;
}
