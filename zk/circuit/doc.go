// Package circuit holds VitalProof's Groth16 (BN254) statement circuit and
// its gadgets: one [Circuit] proves any combination of the parts of package
// zk/statement (range, time in range, adherence, mean, maximum) over the
// readings of up to [Shape].Entries entries of one device and metric.
//
// # What is proved
//
// Public inputs are those of package zk/statement: the digest, the period
// and the parameters. The circuit proves that there are n entries (1 ≤ n ≤
// Entries) with windows, counts and commitments whose digest is the public
// one, and readings for each entry such that:
//
//   - the readings open the entry's commitment: the commitment of package
//     zk/commitment is recomputed from them ([Commit]);
//   - the real readings of an entry have strictly increasing offsets below
//     the entry's window length (at most 2^22 s), so their times lie in the
//     window, and windows are in time order inside the period; hence all
//     readings of the statement are in strictly increasing time order;
//   - the statement's parts hold for the real readings.
//
// # Padding
//
// Shapes are fixed; statements are padded into them.
//
//   - Entry slots i ≥ n are padding: Last is one-hot at n-1 and a slot is
//     real iff i < n. A padding slot has Count 0; its commitment and its
//     digest element are forced to zero, so it is not in the digest.
//   - Within an entry, End is one-hot at Count-1 (all zero in a padding
//     slot), and reading slot j is real iff a[j] = [j < Count] = 1. Count is
//     bound by the digest, so a real reading cannot be hidden as padding and
//     padding cannot be passed off as a reading.
//   - A padding reading slot never counts: its packed word is multiplied by
//     a[j] = 0 (so the last hashed element holds zeros, as the native
//     packing does, and the elements past it are not hashed), its
//     TimeInRange and Adherence flags are constrained to {0, a[j]} = {0},
//     its value is weighted by a[j] in the mean, and the gap check asks
//     strictly increasing offsets only of real readings. Checks that do not
//     need a[j] (value bounds, non-decreasing offsets) apply to padding too:
//     the prover repeats the last offset and fills values with RangeLo, or 0.
//
// # Soundness notes
//
// Packing is injective because every real reading has offset < 2^22 and
// value < 2^20 (see [Pack]). Bounds are proved by a log-derivative lookup
// into an 11-bit table ([ranger]): a reading's value is defined by two
// 11-bit limb witnesses, so bounding it needs no recomposition constraint;
// other quantities are split by a hint, a 22-bit bound costing 3
// constraints, a 33-bit one 4, a 63-bit one 8. The first offset's lower
// bound is implied (a negative first offset would need a value of 2^20 or
// more to open the commitment) and not checked; the period's own bounds are
// checked although the verifier computes them. The commitment is recomputed
// from a private prefix state rather than from the salt: see [Commit] for
// why this binds as much. The tests include, for each constraint, a witness
// that only it refuses, solved with hints that do not refuse anything.
//
// # Cost
//
// Per reading, in R1CS constraints, with entries of 60 readings:
//
//	hashing       31.2  (186 per packed element of 6 readings, +1 to select the last)
//	digest         2.2  (264 per pair of entries)
//	count          1    (End is boolean)
//	packing        1    (word times a[j])
//	offset order   3    (one 22-bit bound)
//	Range          5    (two limbs and a 22-bit bound)
//	TimeInRange    8    (the values' own bound included, without Range)
//	Adherence      6    (+3 for the values' own bound, without Range or TimeInRange)
//	MeanBelow      1    (+3)
//	MaxBelow       3    (+3 without Range or TimeInRange)
//
// plus 14 per entry (window, order) and 2,048 for the range checker's table:
// 45.3 per reading for Range over 24 entries of 60 (65,162 constraints, under
// the 2^16 that halves the prover's FFT domain), 44.3 over 720 entries. Run
// `go test -bench Constraints ./zk/circuit` for the counts, and the
// zk/internal/zkbench program for proving times.
package circuit
