package monitor

import (
	"fmt"
	"time"
)

// counts counts a catch-up's leaves by kind.
type counts struct {
	entries, registrations, events, other int
}

func (c counts) String() string {
	return fmt.Sprintf("%s, %s, %s, %d other", plural(c.entries, "entry", "entries"),
		plural(c.registrations, "registration", "registrations"), plural(c.events, "lifecycle event", "lifecycle events"), c.other)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// apply learns what leaf index, l, says about its device and reports it.
func (m *Monitor) apply(index uint64, l Leaf, c *counts) {
	leafReport := func(k Kind, device, format string, args ...any) {
		m.report(Report{Kind: k, TreeSize: m.st.Checkpoint.Size, Index: index, HasIndex: true, Device: device,
			Message: fmt.Sprintf(format, args...)})
	}
	switch l.Kind {
	case LeafRegistration:
		c.registrations++
		d := m.device(l.Device)
		if d.Registered {
			leafReport(KindReregistered, l.Device, "leaf %d registers device %s again, for manufacturer %s (first registered at leaf %d, for manufacturer %s)",
				index, l.Device, l.Manufacturer, d.RegisteredAt, d.Manufacturer)
			return
		}
		d.Registered, d.RegisteredAt, d.Manufacturer, d.Hospital = true, index, l.Manufacturer, l.Hospital
		if m.watch[l.Manufacturer] {
			leafReport(KindRegistration, l.Device, "registration %d: device %s of manufacturer %s, assigned to hospital %s, registered %s (%s)",
				index, l.Device, l.Manufacturer, l.Hospital, day(l.Start), l.Summary)
		}
	case LeafEntry:
		c.entries++
		d := m.known(index, l, leafReport)
		if d.Registered && m.watch[d.Manufacturer] {
			leafReport(KindEntry, l.Device, "entry %d: device %s of manufacturer %s, hospital %s, %s to %s: %s",
				index, l.Device, d.Manufacturer, l.Hospital, day(l.Start), day(l.End), l.Summary)
		}
		if d.Ended != "" && l.End.Unix() > d.EndTime {
			end := time.Unix(d.EndTime, 0)
			what := map[string]string{EventRecalled: "recall", EventDecommissioned: "decommissioning"}[d.Ended]
			if what == "" {
				what = d.Ended
			}
			if !l.Start.Before(end) {
				leafReport(KindAfterRecall, l.Device, "readings from device %s after its %s at %s: entry %d (%s to %s)",
					l.Device, what, day(end), index, day(l.Start), day(l.End))
			} else {
				leafReport(KindAfterRecall, l.Device, "readings from device %s after its %s at %s: entry %d's window (%s to %s) ends after it",
					l.Device, what, day(end), index, day(l.Start), day(l.End))
			}
		}
	case LeafEvent:
		c.events++
		d := m.known(index, l, leafReport)
		if (l.Event == EventRecalled || l.Event == EventDecommissioned) && d.Ended == "" {
			d.Ended, d.EndTime, d.EndIndex = l.Event, l.Start.Unix(), index
		}
		if d.Registered && m.watch[d.Manufacturer] {
			leafReport(KindEvent, l.Device, "event %d: device %s of manufacturer %s %s, effective %s (%s)",
				index, l.Device, d.Manufacturer, eventPhrase(l.Event), day(l.Start), l.Summary)
		}
	default:
		c.other++
		if l.Problem != "" {
			leafReport(KindMalformed, l.Device, "leaf %d: %s", index, l.Problem)
		}
	}
}

// known returns the facts of the device of an entry or event, reporting
// once per device that no registration named it before.
func (m *Monitor) known(index uint64, l Leaf, leafReport func(Kind, string, string, ...any)) *device {
	d := m.device(l.Device)
	if !d.Registered && !d.ToldUnregistered {
		d.ToldUnregistered = true
		leafReport(KindUnregistered, l.Device, "%s %d is from device %s, which no registration in the log names before it", l.Kind, index, l.Device)
	}
	return d
}

func (m *Monitor) device(id string) *device {
	d, ok := m.st.Devices[id]
	if !ok {
		d = &device{}
		m.st.Devices[id] = d
	}
	return d
}
