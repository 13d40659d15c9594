// A realistic nested JSON payload (a shop order of a few KiB) in proto3 JSON form of examples/polyglot/orders.proto.
export interface OrderRequestJson {
  customerId: string;
  items: Array<{ sku: string; title: string; quantity: number; unitPrice: { currency: string; units: string; nanos?: number }; tags: string[] }>;
  shipTo: { name: string; lines: string[]; city: string; postalCode: string; country: string };
  note: string;
}

export function orderRequest(items: number): OrderRequestJson {
  return {
    customerId: 'customer-000123',
    items: Array.from({ length: items }, (_, i) => ({
      sku: `SKU-${String(1000 + i)}`,
      title: `Stainless steel widget, model ${i}, with extended warranty`,
      quantity: 1 + (i % 5),
      unitPrice: { currency: 'EUR', units: String(10 + i), nanos: 990000000 },
      tags: ['hardware', i % 2 === 0 ? 'sale' : 'new'],
    })),
    shipTo: { name: 'Ada Lovelace', lines: ['12 Analytical Engine Way', 'Floor 3'], city: 'London', postalCode: 'NW1 2DB', country: 'GB' },
    note: 'Leave at the door',
  };
}

/** The app's answer: an Order built from the request, in canonical proto3 JSON (what a decoding sidecar prints). */
export function orderFor(r: OrderRequestJson): Record<string, unknown> {
  const total = r.items.reduce((s, it) => s + it.quantity * Number(it.unitPrice.units), 0);
  return {
    id: 'order-42',
    customerId: r.customerId,
    status: 'PAID',
    items: r.items,
    total: { currency: 'EUR', units: String(total) },
    shipTo: r.shipTo,
    createdAt: '2026-12-02T11:00:00Z',
    labels: { channel: 'web', region: 'eu-west' },
  };
}
