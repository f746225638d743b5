// Context switches for the emulator's fibers: a few instructions on x86-64 (callee-saved
// registers and the SSE/x87 control words, then the stack pointer), where swapcontext makes a
// system call for the signal mask at every switch; ucontext elsewhere.
#include "emulator/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

namespace ipdpp::emu {

#if defined(__x86_64__)
extern "C" void ipdpp_emu_switch(void** save_sp, void* load_sp);
extern "C" void ipdpp_emu_fiber_start();
// ipdpp_emu_fiber_start is where a new fiber's first switch returns to: it calls entry (r13)
// with arg (r12) on a 16-byte aligned stack.
asm(R"(
  .text
  .globl ipdpp_emu_switch
  .hidden ipdpp_emu_switch
  .type ipdpp_emu_switch,@function
ipdpp_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size ipdpp_emu_switch, .-ipdpp_emu_switch

  .globl ipdpp_emu_fiber_start
  .hidden ipdpp_emu_fiber_start
  .type ipdpp_emu_fiber_start,@function
ipdpp_emu_fiber_start:
  movq %r12, %rdi
  andq $-16, %rsp
  call *%r13
  ud2
  .size ipdpp_emu_fiber_start, .-ipdpp_emu_fiber_start
)");

void context_init(Context& ctx, unsigned char* stack, std::size_t bytes, void (*entry)(void*),
                  void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(stack + bytes) & ~std::uintptr_t{15};
  auto* sp = reinterpret_cast<std::uint64_t*>(top);
  std::uint32_t mxcsr = 0;
  std::uint16_t fcw = 0;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  // The frame ipdpp_emu_switch pops, as if the fiber had switched away just before its start.
  *--sp = 0;                                                        // alignment slot
  *--sp = reinterpret_cast<std::uint64_t>(&ipdpp_emu_fiber_start);  // return address
  *--sp = 0;                                                        // rbp
  *--sp = 0;                                                        // rbx
  *--sp = reinterpret_cast<std::uint64_t>(arg);                     // r12
  *--sp = reinterpret_cast<std::uint64_t>(entry);                   // r13
  *--sp = 0;                                                        // r14
  *--sp = 0;                                                        // r15
  *--sp = mxcsr | (static_cast<std::uint64_t>(fcw) << 32);
  ctx.sp = sp;
}

void context_switch(Context& from, Context& to) { ipdpp_emu_switch(&from.sp, to.sp); }
#else
namespace {
// makecontext passes int arguments only: the entry point and its argument travel in halves.
void trampoline(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo) {
  const auto join = [](unsigned hi, unsigned lo) {
    return (static_cast<std::uintptr_t>(hi) << 32) | lo;
  };
  reinterpret_cast<void (*)(void*)>(join(entry_hi, entry_lo))(
      reinterpret_cast<void*>(join(arg_hi, arg_lo)));
}
}  // namespace

void context_init(Context& ctx, unsigned char* stack, std::size_t bytes, void (*entry)(void*),
                  void* arg) {
  getcontext(&ctx.uc);
  ctx.uc.uc_stack.ss_sp = stack;
  ctx.uc.uc_stack.ss_size = bytes;
  ctx.uc.uc_link = nullptr;
  const auto e = reinterpret_cast<std::uintptr_t>(entry);
  const auto a = reinterpret_cast<std::uintptr_t>(arg);
  makecontext(&ctx.uc, reinterpret_cast<void (*)()>(&trampoline), 4, static_cast<unsigned>(e >> 32),
              static_cast<unsigned>(e & 0xffffffffu), static_cast<unsigned>(a >> 32),
              static_cast<unsigned>(a & 0xffffffffu));
}

void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

StackPool::~StackPool() {
  if (base_ != nullptr) munmap(base_, count_ * stride_);
}

void StackPool::reserve(std::size_t count) {
  if (count <= count_) return;
  if (base_ != nullptr) munmap(base_, count_ * stride_);
  base_ = nullptr;
  count_ = 0;
  page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  stride_ = kStackBytes + page_;
  void* p = mmap(nullptr, count * stride_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<unsigned char*>(p);
  count_ = count;
  for (std::size_t i = 0; i < count; ++i) mprotect(base_ + i * stride_, page_, PROT_NONE);
}

}  // namespace ipdpp::emu
