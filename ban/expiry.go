package ban

import "container/heap"

// Expire appends an unban for every ban whose time is up.
func (m *Manager) Expire(dst []Decision) []Decision {
	now := m.now().Unix()
	m.mu.Lock()
	defer m.mu.Unlock()
	for len(m.ends) > 0 && m.ends[0].end <= now {
		e := heap.Pop(&m.ends).(endEntry)
		if a, ok := m.active[e.key]; ok && a.End == e.end {
			m.deleteActiveLocked(e.key)
			dst = append(dst, a.unban(Expired))
		}
	}
	return dst
}

// endEntry is one ban's end time in Manager.ends.
type endEntry struct {
	end int64
	key bkey
}

type endHeap []endEntry

func (h endHeap) Len() int { return len(h) }

func (h endHeap) Less(i, j int) bool { return h[i].end < h[j].end }

func (h endHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *endHeap) Push(x any) { *h = append(*h, x.(endEntry)) }

func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
