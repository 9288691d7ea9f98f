// Microphone capture: resample the AudioContext's rate to 16 kHz and post 20 ms PCM16 chunks.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 16000;   // input samples per output sample
    this.pos = 0;                      // fractional read position into `this.buf`
    this.buf = new Float32Array(0);
    this.out = new Int16Array(320);    // 20 ms at 16 kHz
    this.fill = 0;
  }
  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    const merged = new Float32Array(this.buf.length + input.length);
    merged.set(this.buf); merged.set(input, this.buf.length);
    // Linear interpolation; the browser's input is already band-limited for speech use.
    while (this.pos + 1 < merged.length) {
      const i = Math.floor(this.pos), f = this.pos - i;
      const s = merged[i] * (1 - f) + merged[i + 1] * f;
      this.out[this.fill++] = Math.max(-32768, Math.min(32767, Math.round(s * 32767)));
      if (this.fill === this.out.length) {
        this.port.postMessage(this.out.buffer.slice(0));
        this.fill = 0;
      }
      this.pos += this.ratio;
    }
    const keep = Math.floor(this.pos);
    this.buf = merged.slice(keep);
    this.pos -= keep;
    return true;
  }
}
registerProcessor("capture-processor", CaptureProcessor);
